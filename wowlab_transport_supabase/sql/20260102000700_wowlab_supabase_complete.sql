-- complete and fail: the core's completions and verification (wowlab_core.completions,
-- wowlab_core.verification), in SQL. Completion is idempotent: a duplicate, or a late
-- result of an earlier lease of the same chunk, counts once. A result of a node the
-- submitter does not own is sampled for verification (always its first for each user,
-- then verify_rate, four times that until the node is trusted) when another owner's node
-- could check it; a second run must match byte for byte; a liar is flagged, its
-- unconfirmed results discarded, and notices go out. A job whose iterations are all
-- counted is merged by the finisher (NOTIFY wowlab_finish), with the core's exact merge.

-- verification.flag_liar; returns the iterations to take off each job: {job_id: n}.
create or replace function wowlab.flag_liar(p_liar bigint, p_job bigint, p_chunk bigint)
returns jsonb
language plpgsql volatile
set search_path = ''
as $$
declare
  v_liar public.nodes;
  v_reason text;
  v_first boolean;
  v_job_owner int;
  v_uncount jsonb := '{}';
  v_affected int[];
  r record;
begin
  select * into v_liar from public.nodes n where n.id = p_liar for update;
  if v_liar.id is null then
    return '{}'::jsonb;
  end if;
  v_reason := format('its result for chunk %s of job #%s did not match another node''s run',
    p_chunk, p_job);
  v_first := v_liar.flagged_at is null;
  update public.nodes n set flagged_at = coalesce(n.flagged_at, now()),
    flag_reason = left(v_reason, 500), trust_score = 0
  where n.id = p_liar;
  select j.user_id into v_job_owner from public.sim_jobs j where j.id = p_job;
  v_affected := array[v_job_owner];
  for r in
    with discarded as (
      select c.id, c.job_id, c.iterations, c.status from public.sim_chunks c
      where c.computed_by = p_liar and c.verified_by is null
        and c.status in ('completed', 'verify') and c.id <> p_chunk
        and c.job_id in (select j.id from public.sim_jobs j where j.status in ('pending', 'running'))
      for update
    ), reset as (
      update public.sim_chunks c set status = 'pending', result = null, computed_by = null,
        verify_state = null, alt_result = null, alt_node_id = null, completed_at = null,
        progress = 0
      from discarded d where c.id = d.id
      returning d.job_id, d.iterations, d.status
    )
    select x.job_id, sum(case when x.status = 'completed' then x.iterations else 0 end) as n
    from reset x group by x.job_id
  loop
    if r.n > 0 then
      v_uncount := v_uncount || jsonb_build_object(r.job_id::text, r.n);
    end if;
    v_affected := v_affected || (select j.user_id from public.sim_jobs j where j.id = r.job_id);
  end loop;
  update public.sim_chunks c set alt_result = null, alt_node_id = null, verify_state = 'pending'
  where c.alt_node_id = p_liar and c.status = 'verify' and c.id <> p_chunk;
  update public.sim_chunks c set
    status = case when c.verify_state in ('pending', 'tiebreak') then 'verify' else 'pending' end,
    lease_token_hash = null, lease_expires_at = null, lease_deadline_at = null
  where c.node_id = p_liar and c.status = 'leased'
    and c.job_id in (select j.id from public.sim_jobs j where j.user_id is distinct from v_liar.user_id);
  if v_first and v_liar.user_id is not null then
    insert into public.notices (user_id, kind, message, node_id, job_id, created_at)
    values (v_liar.user_id, 'node-flagged', left(format(
      'Your node %s was flagged: %s. It now runs only your own jobs. Check the machine '
      '(overclock, faulty memory, a modified client) and ask an admin to clear the flag.',
      quote_literal(v_liar.name), v_reason), 1000), p_liar, p_job, now());
  end if;
  insert into public.notices (user_id, kind, message, node_id, job_id, created_at)
  select u, 'wrong-result', left(format(
    'Node %s returned a wrong result for job #%s; its unconfirmed results were discarded '
    'and run again on other nodes.', quote_literal(v_liar.name), p_job), 1000),
    p_liar, p_job, now()
  from (select distinct u from unnest(v_affected) u) x
  where u is not null and u is distinct from v_liar.user_id
  order by u;
  return v_uncount;
end;
$$;

create or replace function public.node_complete(
  p_node_id bigint, p_token text, p_completions jsonb
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  s wowlab.settings := wowlab.settings();
  v_node public.nodes;
  v_item jsonb;
  v_cid bigint;
  v_token_hash text;
  v_normal jsonb;
  v_problem text;
  v_chunk public.sim_chunks;
  v_submitter int;
  v_held boolean;
  v_out jsonb := '[]';
  v_settled bigint[] := '{}';
  v_delta jsonb := '{}';
  v_checked text[] := '{}';
  v_checker jsonb := '{}';
  v_liars jsonb := '[]';
  v_confirmed bigint[] := '{}';
  v_flagged bigint[] := '{}';
  v_sample boolean;
  v_first boolean;
  v_key text;
  v_own boolean;
  v_final boolean;
  v_result jsonb;
  v_by bigint;
  v_verified bigint;
  v_tiebreak boolean;
  v_liar_ids bigint[];
  v_iter_sum numeric := 0;
  v_sec_sum double precision := 0;
  v_events_sum numeric := 0;
  v_events_all boolean := true;
  v_samples int := 0;
  v_rate double precision;
  v_uncount jsonb;
  v_elapsed jsonb;
  r record;
begin
  if p_completions is null or jsonb_typeof(p_completions) <> 'array' then
    perform wowlab.raise_error(422, 'InvalidRequest', 'completions must be a list', 'completions');
  end if;
  if jsonb_array_length(p_completions) > 256 then
    perform wowlab.raise_error(
      422, 'InvalidRequest', 'at most 256 completions per call', 'completions');
  end if;
  for v_item in select * from jsonb_array_elements(p_completions) loop
    if jsonb_typeof(v_item) <> 'object' or not wowlab.is_json_integer(v_item -> 'chunk_id')
       or jsonb_typeof(v_item -> 'lease_token') is distinct from 'string'
       or not (v_item ? 'result') then
      perform wowlab.raise_error(422, 'InvalidRequest',
        'Completion: each completion needs chunk_id, lease_token and result', 'completions');
    end if;
    if octet_length((v_item -> 'result')::text) > s.max_result_bytes then
      perform wowlab.raise_error(413, 'RequestTooLarge', format(
        'the result of chunk %s is larger than %s bytes', v_item ->> 'chunk_id',
        s.max_result_bytes), 'result');
    end if;
  end loop;
  v_node := wowlab.authenticate(p_node_id, p_token);
  v_node := wowlab.mark_seen(v_node.id);
  perform 1 from public.sim_chunks c
  where c.id in (select (x ->> 'chunk_id')::bigint from jsonb_array_elements(p_completions) x)
  order by c.id for update;

  for v_item in select * from jsonb_array_elements(p_completions) loop
    v_cid := (v_item ->> 'chunk_id')::bigint;
    select * into v_normal, v_problem from wowlab.check_result(v_item -> 'result');
    if v_problem is not null then
      v_out := v_out || jsonb_build_object('chunk_id', v_cid, 'outcome', 'rejected', 'detail', v_problem);
      continue;
    end if;
    if v_cid = any(v_settled) then
      v_out := v_out || jsonb_build_object('chunk_id', v_cid, 'outcome', 'duplicate', 'detail', 'already completed');
      continue;
    end if;
    select * into v_chunk from public.sim_chunks c where c.id = v_cid;
    if v_chunk.id is null then
      v_out := v_out || jsonb_build_object('chunk_id', v_cid, 'outcome', 'rejected', 'detail', 'no such chunk');
      continue;
    end if;
    select j.user_id into v_submitter from public.sim_jobs j where j.id = v_chunk.job_id;
    if v_chunk.status = 'completed' then
      v_out := v_out || jsonb_build_object('chunk_id', v_cid, 'outcome', 'duplicate', 'detail', 'already completed');
      continue;
    end if;
    v_token_hash := wowlab.hash_token(v_item ->> 'lease_token');
    if v_chunk.lease_token_hash is not null and v_chunk.lease_token_hash = v_token_hash then
      v_held := v_chunk.node_id = v_node.id;
    else
      -- a late result: this node held the chunk once, under this token
      v_held := exists (
        select 1 from public.chunk_leases l
        where l.chunk_id = v_cid and l.token_hash = v_token_hash and l.node_id = v_node.id);
    end if;
    if not coalesce(v_held, false) then
      v_out := v_out || jsonb_build_object('chunk_id', v_cid, 'outcome', 'rejected',
        'detail', 'this node does not hold a lease on the chunk');
      continue;
    end if;
    if v_chunk.status in ('cancelled', 'failed') then
      update public.sim_chunks c set lease_token_hash = null where c.id = v_cid;
      v_out := v_out || jsonb_build_object('chunk_id', v_cid, 'outcome', 'ignored',
        'detail', format('the job is %s', v_chunk.status));
      continue;
    end if;
    if (v_normal ->> 'seed_offset')::numeric <> v_chunk.seed_offset
       or (v_normal ->> 'count')::numeric <> v_chunk.iterations then
      v_out := v_out || jsonb_build_object('chunk_id', v_cid, 'outcome', 'rejected', 'detail', format(
        'result covers [%s, %s) but the chunk is [%s, %s)',
        v_normal ->> 'seed_offset',
        (v_normal ->> 'seed_offset')::numeric + (v_normal ->> 'count')::numeric,
        v_chunk.seed_offset, v_chunk.seed_offset + v_chunk.iterations));
      continue;
    end if;
    if v_node.flagged_at is not null and v_submitter is distinct from v_node.user_id then
      v_out := v_out || jsonb_build_object('chunk_id', v_cid, 'outcome', 'rejected',
        'detail', 'this node is flagged: it runs only its owner''s jobs');
      continue;
    end if;
    if v_node.id = v_chunk.computed_by or v_node.id = v_chunk.alt_node_id then
      v_out := v_out || jsonb_build_object('chunk_id', v_cid, 'outcome', 'duplicate',
        'detail', 'already recorded; another node is checking it');
      continue;
    end if;
    v_out := v_out || jsonb_build_object('chunk_id', v_cid, 'outcome', 'accepted', 'detail', null);
    v_settled := v_settled || v_cid;

    if v_chunk.verify_state in ('pending', 'tiebreak') then
      -- a verification run: verification.judge_replica
      v_own := v_node.user_id = v_submitter;
      v_final := false;
      v_tiebreak := false;
      v_liar_ids := '{}';
      if v_chunk.verify_state = 'tiebreak' then
        if v_own then
          v_final := true; v_result := v_normal; v_by := v_node.id; v_verified := null;
          if v_chunk.result is distinct from v_normal and v_chunk.computed_by is not null then
            v_liar_ids := v_liar_ids || v_chunk.computed_by;
          end if;
          if v_chunk.alt_result is distinct from v_normal and v_chunk.alt_node_id is not null then
            v_liar_ids := v_liar_ids || v_chunk.alt_node_id;
          end if;
        elsif v_normal = v_chunk.result then
          v_final := true; v_result := v_chunk.result; v_by := v_chunk.computed_by; v_verified := v_node.id;
          if v_chunk.alt_node_id is not null then v_liar_ids := array[v_chunk.alt_node_id]; end if;
        elsif v_normal = v_chunk.alt_result then
          v_final := true; v_result := v_chunk.alt_result; v_by := v_chunk.alt_node_id; v_verified := v_node.id;
          if v_chunk.computed_by is not null then v_liar_ids := array[v_chunk.computed_by]; end if;
        end if;
      elsif v_normal = v_chunk.result then
        v_final := true; v_result := v_chunk.result; v_by := v_chunk.computed_by; v_verified := v_node.id;
      elsif v_own then
        v_final := true; v_result := v_normal; v_by := v_node.id; v_verified := null;
        if v_chunk.computed_by is not null then v_liar_ids := array[v_chunk.computed_by]; end if;
      else
        v_tiebreak := true;
      end if;
      for i in 1..coalesce(cardinality(v_liar_ids), 0) loop
        v_liars := v_liars || jsonb_build_array(jsonb_build_array(v_liar_ids[i], v_cid, v_chunk.job_id));
      end loop;
      if v_final then
        update public.sim_chunks c set status = 'completed', result = v_result, node_id = v_node.id,
          computed_by = v_by, verified_by = v_verified, verify_state = 'verified',
          alt_result = null, alt_node_id = null, completed_at = now(),
          lease_token_hash = null, lease_expires_at = null, lease_deadline_at = null
        where c.id = v_cid;
        if v_verified is not null and cardinality(v_liar_ids) = 0 then
          v_confirmed := v_confirmed || coalesce(v_by, 0);
        end if;
        v_delta := jsonb_set(v_delta, array[v_chunk.job_id::text],
          to_jsonb(coalesce((v_delta ->> v_chunk.job_id::text)::bigint, 0) + v_chunk.iterations));
      elsif v_tiebreak then
        update public.sim_chunks c set status = 'verify', result = v_chunk.result, node_id = v_node.id,
          computed_by = v_chunk.computed_by, verified_by = null, verify_state = 'tiebreak',
          alt_result = v_normal, alt_node_id = v_node.id, completed_at = now(),
          lease_token_hash = null, lease_expires_at = null, lease_deadline_at = null
        where c.id = v_cid;
      else  -- every run disagreed: nobody can tell who is right, so the chunk starts over
        update public.sim_chunks c set status = 'pending', result = null, node_id = v_node.id,
          computed_by = null, verified_by = null, verify_state = null, alt_result = null,
          alt_node_id = null, completed_at = null,
          lease_token_hash = null, lease_expires_at = null, lease_deadline_at = null
        where c.id = v_cid;
      end if;
    else
      -- a first run: completions._first_run
      v_sample := false;
      v_key := v_node.id || ':' || v_submitter;
      if v_node.user_id is distinct from v_submitter then
        v_first := not (v_key = any(v_checked)) and not exists (
          select 1 from public.sim_chunks c join public.sim_jobs j on j.id = c.job_id
          where c.computed_by = v_node.id and j.user_id = v_submitter);
        v_sample := v_first or random() < least(1.0, case
          when v_node.flagged_at is null and v_node.trust_score >= 10 then s.verify_rate
          else s.verify_rate * 4.0 end);
        if v_sample then
          v_key := v_chunk.job_id || ':' || coalesce(v_node.user_id, 0);
          if not (v_checker ? v_key) then
            v_checker := v_checker || jsonb_build_object(v_key, exists (
              select 1 from wowlab.online_nodes_for(v_chunk.job_id) o
              where o.user_id is distinct from v_node.user_id and o.flagged_at is null));
          end if;
          v_sample := (v_checker ->> v_key)::boolean;
        end if;
      end if;
      v_checked := v_checked || (v_node.id || ':' || v_submitter);
      if v_sample then
        update public.sim_chunks c set status = 'verify', result = v_normal, node_id = v_node.id,
          computed_by = v_node.id, verified_by = null, verify_state = 'pending',
          alt_result = null, alt_node_id = null, completed_at = now(),
          lease_token_hash = null, lease_expires_at = null, lease_deadline_at = null
        where c.id = v_cid;
      else
        update public.sim_chunks c set status = 'completed', result = v_normal, node_id = v_node.id,
          computed_by = v_node.id, verified_by = null, verify_state = null,
          alt_result = null, alt_node_id = null, completed_at = now(),
          lease_token_hash = null, lease_expires_at = null, lease_deadline_at = null
        where c.id = v_cid;
        v_delta := jsonb_set(v_delta, array[v_chunk.job_id::text],
          to_jsonb(coalesce((v_delta ->> v_chunk.job_id::text)::bigint, 0) + v_chunk.iterations));
      end if;
    end if;
    v_elapsed := v_item -> 'elapsed_seconds';
    if jsonb_typeof(v_elapsed) = 'number' and v_elapsed::text::double precision > 0 then
      v_samples := v_samples + 1;
      v_iter_sum := v_iter_sum + v_chunk.iterations;
      v_sec_sum := v_sec_sum + v_elapsed::text::double precision;
      if wowlab.is_json_integer(v_normal #> '{metrics,events}')
         and (v_normal #>> '{metrics,events}')::numeric > 0 then
        v_events_sum := v_events_sum + (v_normal #>> '{metrics,events}')::numeric;
      else
        v_events_all := false;
      end if;
    end if;
  end loop;

  -- verification.confirm: confirmed results grow their node's trust score.
  foreach v_by in array v_confirmed loop
    update public.nodes n set trust_score = least(n.trust_score + 1, 1000) where n.id = v_by;
  end loop;
  for r in select e.value as x from jsonb_array_elements(v_liars) e loop
    if (r.x ->> 0)::bigint = any(v_flagged)
       or not exists (select 1 from public.sim_jobs j where j.id = (r.x ->> 2)::bigint) then
      continue;
    end if;
    v_uncount := wowlab.flag_liar((r.x ->> 0)::bigint, (r.x ->> 2)::bigint, (r.x ->> 1)::bigint);
    for v_key in select jsonb_object_keys(v_uncount) loop
      v_delta := jsonb_set(v_delta, array[v_key],
        to_jsonb(coalesce((v_delta ->> v_key)::bigint, 0) - (v_uncount ->> v_key)::bigint));
    end loop;
    v_flagged := v_flagged || (r.x ->> 0)::bigint;
  end loop;
  for v_key in select k from jsonb_object_keys(v_delta) k order by k::bigint loop
    perform wowlab.count_progress(v_key::bigint, (v_delta ->> v_key)::bigint);
  end loop;
  if v_samples > 0 and v_sec_sum > 0 then
    v_rate := v_iter_sum / v_sec_sum;
    update public.nodes n set iterations_per_second = case when n.iterations_per_second is null
      then v_rate else n.iterations_per_second + 0.3 * (v_rate - n.iterations_per_second) end
    where n.id = v_node.id;
    if v_events_all then
      v_rate := least(greatest(v_events_sum / v_sec_sum, 1.0), 1e10);
      update public.nodes n set events_per_second = case when n.events_per_second is null
        then v_rate else n.events_per_second + 0.3 * (v_rate - n.events_per_second) end
      where n.id = v_node.id;
    end if;
  end if;
  return v_out;
end;
$$;

-- fail: a node's error for a chunk it holds (completions.fail_chunk). The chunk goes back
-- to the pool but never to this node again; the job fails once 2 different nodes failed
-- it (or no other node could run it). 'over-budget' is not the node's fault: the chunk
-- is cut in two and no failure is counted.
create or replace function public.node_fail(
  p_node_id bigint, p_token text, p_chunk_id bigint, p_lease_token text, p_error text,
  p_reason text default null
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_node public.nodes;
  v_chunk public.sim_chunks;
  v_job public.sim_jobs;
  v_error text;
  v_failed_on bigint[];
  v_failed int;
  v_needed int;
  v_first bigint;
begin
  if p_reason is not null and p_reason not in ('error', 'over-budget') then
    perform wowlab.raise_error(422, 'InvalidRequest', 'reason must be one of error, over-budget', 'reason');
  end if;
  v_node := wowlab.authenticate(p_node_id, p_token);
  select * into v_chunk from public.sim_chunks c where c.id = p_chunk_id for update;
  if v_chunk.id is null or v_chunk.status <> 'leased'
     or v_chunk.lease_token_hash is distinct from wowlab.hash_token(p_lease_token)
     or v_chunk.node_id is distinct from v_node.id then
    perform wowlab.raise_error(409, 'LeaseLost', format('chunk %s is not leased to this node', p_chunk_id));
  end if;
  v_error := left(coalesce(nullif(p_error, ''), 'unknown error'), 1500);
  if p_reason = 'over-budget'
     and (v_chunk.iterations > 1 or v_chunk.verify_state in ('pending', 'tiebreak')) then
    v_error := left(format('over budget on node %s: %s', quote_literal(v_node.name), v_error), 2000);
    if v_chunk.verify_state in ('pending', 'tiebreak') then
      update public.sim_chunks c set status = 'verify', error = v_error, lease_token_hash = null,
        lease_expires_at = null, lease_deadline_at = null, progress = 0
      where c.id = v_chunk.id;
    else
      v_first := (v_chunk.iterations + 1) / 2;
      update public.sim_chunks c set status = 'pending', iterations = v_first, error = v_error,
        lease_token_hash = null, lease_expires_at = null, lease_deadline_at = null, progress = 0
      where c.id = v_chunk.id;
      insert into public.sim_chunks (
        job_id, config_hash, iterations, seed_offset, status, attempts, failures, expirations,
        progress, created_at)
      values (v_chunk.job_id, v_chunk.config_hash, v_chunk.iterations - v_first,
        v_chunk.seed_offset + v_first, 'pending', 0, 0, 0, 0, now());
    end if;
    return jsonb_build_object('job_failed', false);
  end if;
  update public.chunk_leases l set outcome = 'failed'
  where l.chunk_id = v_chunk.id and l.node_id = v_node.id and l.token_hash = v_chunk.lease_token_hash;
  select coalesce(array_agg(distinct l.node_id), '{}') into v_failed_on
  from public.chunk_leases l
  where l.chunk_id = v_chunk.id and l.outcome = 'failed' and l.node_id is not null;
  v_failed := cardinality(v_failed_on);
  select * into v_job from public.sim_jobs j where j.id = v_chunk.job_id;
  v_needed := greatest(2, v_job.max_attempts);
  update public.sim_chunks c set failures = c.failures + 1, error = v_error,
    lease_token_hash = null, lease_expires_at = null, lease_deadline_at = null, progress = 0,
    status = case when c.verify_state in ('pending', 'tiebreak') then 'verify' else 'pending' end
  where c.id = v_chunk.id;
  if v_job.id is not null and (
    v_failed >= v_needed
    or not exists (
      select 1 from wowlab.online_nodes_for(v_job.id) o where not (o.id = any(v_failed_on)))
  ) then
    update public.sim_chunks c set status = 'failed' where c.id = v_chunk.id;
    perform wowlab.fail_job(v_job.id, case when v_failed < v_needed then format(
      'chunk %s failed on %s %s (no other node may run it); last error from node %s: %s',
      v_chunk.id, v_failed, case when v_failed = 1 then 'node' else 'different nodes' end,
      quote_literal(v_node.name), v_error)
    else format('chunk %s failed on %s different nodes; last error from node %s: %s',
      v_chunk.id, v_failed, quote_literal(v_node.name), v_error) end);
    return jsonb_build_object('job_failed', true);
  end if;
  return jsonb_build_object('job_failed', false);
end;
$$;

-- Who may call what: nodes (anon) the node functions, signed-in users claim_node and
-- cancel_job; service_role everything. Nothing else is executable through the API.
revoke all on function
  public.node_register(jsonb), public.node_claim_status(bigint, text),
  public.node_go_offline(bigint, text), public.node_get_config(bigint, text, text),
  public.node_release(bigint, text, bigint[], text), public.node_heartbeat(bigint, text, jsonb),
  public.node_lease(bigint, text, int), public.node_complete(bigint, text, jsonb),
  public.node_fail(bigint, text, bigint, text, text, text),
  public.claim_node(text, text), public.cancel_job(bigint)
from public, anon, authenticated;
grant execute on function
  public.node_register(jsonb), public.node_claim_status(bigint, text),
  public.node_go_offline(bigint, text), public.node_get_config(bigint, text, text),
  public.node_release(bigint, text, bigint[], text), public.node_heartbeat(bigint, text, jsonb),
  public.node_lease(bigint, text, int), public.node_complete(bigint, text, jsonb),
  public.node_fail(bigint, text, bigint, text, text, text)
to anon, service_role;
grant execute on function public.claim_node(text, text), public.cancel_job(bigint)
to authenticated, service_role;
revoke all on all functions in schema wowlab from public;
grant execute on function
  wowlab.current_user_id(), wowlab.are_friends(int, int), wowlab.is_guild_member(int, int),
  wowlab.owns_guild(int, int), wowlab.share_a_guild(int, int),
  wowlab.may_use(int, int, int, boolean), wowlab.owns_node(int, int), wowlab.owns_job(int, int),
  wowlab.owns_config(text, int)
to authenticated, service_role;
