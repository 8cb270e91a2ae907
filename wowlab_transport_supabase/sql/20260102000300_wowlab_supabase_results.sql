-- Checking a node's chunk result in SQL exactly as wowlab_core.results.ChunkResult.from_dict
-- does, and storing it in its normal form (ChunkResult.to_dict): the finisher merges the
-- stored results with the core's exact merge, so SQL must never accept what the core
-- would refuse. (It is a little stricter: histogram keys must be plain decimal integers.)

-- wowlab_core.results.bucket_index.
create or replace function wowlab.bucket_index(p_value numeric) returns int
language plpgsql stable
set search_path = ''
as $$
declare
  i int;
begin
  if p_value < 0 then
    return -wowlab.bucket_index(-p_value) - 1;
  end if;
  select b.idx into i from wowlab.bucket_bounds b
  where b.lower_bound <= p_value order by b.lower_bound desc limit 1;
  return i;
end;
$$;

create or replace function wowlab.is_json_integer(p_value jsonb) returns boolean
language sql immutable
set search_path = ''
as $$
  select jsonb_typeof(p_value) = 'number' and p_value::text ~ '^-?[0-9]+$'
$$;

-- The normal form of a result, or an error message (exactly one is null).
create or replace function wowlab.check_result(p_result jsonb, out normal jsonb, out problem text)
language plpgsql stable
set search_path = ''
as $$
declare
  name text;
  v numeric;
  n numeric;
  seed_offset numeric;
  total numeric;
  total_sq numeric;
  minimum numeric;
  maximum numeric;
  largest numeric;
  hist jsonb;
  metrics jsonb;
  hist_out jsonb := '{}';
  metrics_out jsonb := '{}';
  hist_sum numeric := 0;
  k text;
  item jsonb;
  low int;
  high int;
  max_value constant numeric := 9223372036854775807;
begin
  if p_result is null or jsonb_typeof(p_result) <> 'object' then
    problem := 'result must be a JSON object';
    return;
  end if;
  foreach name in array array['seed_offset', 'count', 'total', 'total_sq', 'minimum', 'maximum'] loop
    if not coalesce(wowlab.is_json_integer(p_result -> name), false) then
      problem := format('result.%s must be an integer', name);
      return;
    end if;
  end loop;
  seed_offset := (p_result ->> 'seed_offset')::numeric;
  n := (p_result ->> 'count')::numeric;
  total := (p_result ->> 'total')::numeric;
  total_sq := (p_result ->> 'total_sq')::numeric;
  minimum := (p_result ->> 'minimum')::numeric;
  maximum := (p_result ->> 'maximum')::numeric;
  hist := coalesce(p_result -> 'histogram', '{}');
  metrics := coalesce(p_result -> 'metrics', '{}');
  if jsonb_typeof(hist) <> 'object' or jsonb_typeof(metrics) <> 'object' then
    problem := 'result.histogram and result.metrics must be objects';
    return;
  end if;
  if (select count(*) from jsonb_object_keys(metrics)) > 20000
     or (select count(*) from jsonb_object_keys(hist)) > 2 * (select count(*) from wowlab.bucket_bounds) then
    problem := 'result has too many metrics or histogram buckets';
    return;
  end if;
  for k, item in select * from jsonb_each(hist) loop
    if k !~ '^-?[0-9]{1,20}$' then
      problem := format('result.histogram key %L is not an integer', k);
      return;
    end if;
    if not wowlab.is_json_integer(item) or item::text::numeric <= 0 then
      problem := format('result.histogram[%s] must be a positive integer', k);
      return;
    end if;
    if hist_out ? (k::numeric)::text then
      problem := format('result.histogram key %L appears twice', k);
      return;
    end if;
    hist_out := hist_out || jsonb_build_object((k::numeric)::text, item::text::numeric);
    hist_sum := hist_sum + item::text::numeric;
  end loop;
  for k, item in select * from jsonb_each(metrics) loop
    if k = '' or length(k) > 200 then
      problem := format('result.metrics key %L is not a valid name', k);
      return;
    end if;
    if not wowlab.is_json_integer(item) then
      problem := format('result.metrics[%s] must be an integer', k);
      return;
    end if;
    metrics_out := metrics_out || jsonb_build_object(k, item::text::numeric);
  end loop;
  -- ChunkResult.check
  if n <= 0 or seed_offset < 0 then
    problem := 'result.count must be positive and seed_offset non-negative';
    return;
  end if;
  if minimum > maximum then
    problem := 'result.minimum is greater than result.maximum';
    return;
  end if;
  largest := greatest(abs(minimum), abs(maximum));
  if largest >= max_value then
    problem := 'result.minimum or result.maximum is out of range';
    return;
  end if;
  if hist_sum <> n then
    problem := 'result.histogram does not add up to result.count';
    return;
  end if;
  if not (n * minimum <= total and total <= n * maximum) then
    problem := 'result.total is outside count x [minimum, maximum]';
    return;
  end if;
  if total_sq < 0 or n * total_sq < total * total then
    problem := 'result.total_sq is inconsistent with result.total';
    return;
  end if;
  if total_sq > n * largest * largest then
    problem := 'result.total_sq is larger than count x maximum squared';
    return;
  end if;
  if exists (select 1 from jsonb_each(metrics_out) e where abs(e.value::text::numeric) > max_value) then
    problem := 'a result.metrics value is out of range';
    return;
  end if;
  low := wowlab.bucket_index(minimum);
  high := wowlab.bucket_index(maximum);
  for k in select jsonb_object_keys(hist_out) loop
    if k::numeric < low or k::numeric > high then
      problem := 'result.histogram has buckets outside [minimum, maximum]';
      return;
    end if;
  end loop;
  normal := jsonb_build_object(
    'seed_offset', seed_offset, 'count', n, 'total', total, 'total_sq', total_sq,
    'minimum', minimum, 'maximum', maximum, 'histogram', hist_out, 'metrics', metrics_out
  );
end;
$$;
