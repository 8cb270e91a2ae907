-- Format 2 of the chunk result's histogram (wowlab_core.histogram): HDR-style buckets at
-- most 0.1 % wide instead of ~1 %. check_result accepts both formats as ChunkResult.from_dict
-- does: a result without histogram_format (format 1, from nodes not yet upgraded) is
-- checked against its own buckets, then converted; the stored normal form is always
-- format 2, so SQL and the core store and compare the same JSON.

-- wowlab_core.histogram.bucket_index (integer shifts only; p_value below 2**63).
create or replace function wowlab.hdr_bucket_index(p_value numeric) returns numeric
language plpgsql immutable
set search_path = ''
as $$
declare
  m bigint;
  shift int := 0;
begin
  if p_value < 0 then
    return -wowlab.hdr_bucket_index(-p_value) - 1;
  end if;
  m := p_value::bigint;
  while m >= 2048 loop
    m := m >> 1;
    shift := shift + 1;
  end loop;
  return shift * 1024 + m;
end;
$$;

-- The integer midpoint of format-1 bucket p_index (wowlab_core.histogram.legacy_bucket_range).
create or replace function wowlab.legacy_bucket_midpoint(p_index numeric) returns numeric
language plpgsql stable
set search_path = ''
as $$
declare
  a numeric;
  b numeric;
  low numeric;
  high numeric;
begin
  select lower_bound into a from wowlab.bucket_bounds where idx = greatest(p_index, -p_index - 1);
  select lower_bound into b from wowlab.bucket_bounds where idx = greatest(p_index, -p_index - 1) + 1;
  if p_index < 0 then
    low := -b + 1;
    high := -a + 1;
  else
    low := a;
    high := b;
  end if;
  return floor((low + high - 1) / 2);
end;
$$;

-- The normal form of a result (format 2), or an error message (exactly one is null).
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
  hist_format numeric;
  converted jsonb := '{}';
  b text;
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
  hist_format := 1;
  if p_result ? 'histogram_format' then
    if not coalesce(wowlab.is_json_integer(p_result -> 'histogram_format'), false)
       or (p_result ->> 'histogram_format')::numeric not in (1, 2) then
      problem := format('result.histogram_format %s is not known (upgrade the portal?)',
        p_result -> 'histogram_format');
      return;
    end if;
    hist_format := (p_result ->> 'histogram_format')::numeric;
  end if;
  hist := coalesce(p_result -> 'histogram', '{}');
  metrics := coalesce(p_result -> 'metrics', '{}');
  if jsonb_typeof(hist) <> 'object' or jsonb_typeof(metrics) <> 'object' then
    problem := 'result.histogram and result.metrics must be objects';
    return;
  end if;
  if (select count(*) from jsonb_object_keys(metrics)) > 20000
     or (select count(*) from jsonb_object_keys(hist)) > least(2 * 55296, greatest(n, 0)) then
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
  if hist_format = 1 then
    low := wowlab.bucket_index(minimum);
    high := wowlab.bucket_index(maximum);
  else
    low := wowlab.hdr_bucket_index(minimum);
    high := wowlab.hdr_bucket_index(maximum);
  end if;
  for k in select jsonb_object_keys(hist_out) loop
    if k::numeric < low or k::numeric > high then
      problem := 'result.histogram has buckets outside [minimum, maximum]';
      return;
    end if;
  end loop;
  if hist_format = 1 then
    -- wowlab_core.histogram.convert_legacy_histogram: each count to the bucket of its
    -- old bucket's midpoint, clamped to [minimum, maximum].
    for k, item in select * from jsonb_each(hist_out) loop
      b := wowlab.hdr_bucket_index(
        least(greatest(wowlab.legacy_bucket_midpoint(k::numeric), minimum), maximum))::text;
      converted := converted || jsonb_build_object(
        b, coalesce((converted ->> b)::numeric, 0) + item::text::numeric);
    end loop;
    hist_out := converted;
  end if;
  normal := jsonb_build_object(
    'histogram_format', 2, 'seed_offset', seed_offset, 'count', n, 'total', total, 'total_sq', total_sq,
    'minimum', minimum, 'maximum', maximum, 'histogram', hist_out, 'metrics', metrics_out
  );
end;
$$;

-- Helpers of check_result (which runs inside node_complete): not callable through the API.
revoke all on function wowlab.hdr_bucket_index(numeric), wowlab.legacy_bucket_midpoint(numeric)
from public, anon, authenticated;
