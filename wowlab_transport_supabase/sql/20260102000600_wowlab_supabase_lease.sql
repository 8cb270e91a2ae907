-- lease: the core's lease call (wowlab_core.leases.lease_chunks), in SQL.
--
-- A node with free workers leases waiting chunks of active jobs whose owners may use it
-- (access grants, the job's own-nodes and public choices, the node's engines), atomically
-- (FOR UPDATE SKIP LOCKED), under one new lease token, with a lease that heartbeats push
-- back and a hard deadline they cannot. The node never holds more than max_parallel
-- leases; a chunk it failed is never given to it again; its owner's jobs come first, then
-- the other users' in turn (the user with the fewest chunks in flight first); a chunk
-- waiting for verification goes to a node of another owner than its first run's,
-- the submitter's own or a trusted node first (others after VERIFY_GRACE_SECONDS, 10 s).

-- wowlab_core.planning.iteration_rate.
create or replace function wowlab.iteration_rate(
  p_events_per_iteration double precision,
  p_seconds_per_iteration double precision,
  p_worker_events_per_second double precision
) returns double precision
language sql immutable
set search_path = ''
as $$
  select nullif(least(
    case when p_events_per_iteration > 0 and p_events_per_iteration < 'infinity' then
      (case when p_worker_events_per_second > 0 and p_worker_events_per_second < 'infinity'
        then p_worker_events_per_second else 5000000.0 end) / p_events_per_iteration end,
    case when p_seconds_per_iteration > 0 and p_seconds_per_iteration < 'infinity'
      then 1.0 / p_seconds_per_iteration end
  ), 0)
$$;

-- Take up to p_limit chunks of the given jobs (verification runs first); returns their ids.
create or replace function wowlab.take_chunks(
  p_node public.nodes, p_verify_jobs bigint[], p_pending_jobs bigint[], p_limit int,
  p_own boolean, p_trusted boolean, p_token_hash text, p_expires timestamptz
) returns bigint[]
language plpgsql volatile
set search_path = ''
as $$
declare
  v_ids bigint[] := '{}';
  v_more bigint[];
  v_since timestamptz;
begin
  if cardinality(p_verify_jobs) > 0 and p_node.flagged_at is null then
    v_since := case when p_own or p_trusted then now() else now() - interval '10 seconds' end;
    with picked as materialized (
      select c.id from public.sim_chunks c
      where c.status = 'verify' and c.job_id = any(p_verify_jobs)
        and not exists (
          select 1 from public.chunk_leases l
          where l.chunk_id = c.id and l.node_id = p_node.id and l.outcome = 'failed')
        and c.computed_by <> p_node.id
        and (c.alt_node_id is null or c.alt_node_id <> p_node.id)
        and not exists (
          select 1 from public.nodes o
          where (o.id = c.computed_by or o.id = c.alt_node_id) and o.user_id = p_node.user_id)
        and c.completed_at <= v_since
      order by c.job_id, c.seed_offset
      limit p_limit
      for update skip locked
    ), leased as (
      update public.sim_chunks c set
        status = 'leased', node_id = p_node.id, attempts = c.attempts + 1,
        lease_token_hash = p_token_hash, lease_expires_at = p_expires, leased_at = now(),
        progress = 0
      from picked where c.id = picked.id and c.status = 'verify'
      returning c.id
    )
    select coalesce(array_agg(id), '{}') into v_ids from leased;
  end if;
  if cardinality(p_pending_jobs) > 0 and cardinality(v_ids) < p_limit then
    with picked as materialized (
      select c.id from public.sim_chunks c
      where c.status = 'pending' and c.job_id = any(p_pending_jobs)
        and not exists (
          select 1 from public.chunk_leases l
          where l.chunk_id = c.id and l.node_id = p_node.id and l.outcome = 'failed')
      order by c.job_id, c.seed_offset
      limit p_limit - cardinality(v_ids)
      for update skip locked
    ), leased as (
      update public.sim_chunks c set
        status = 'leased', node_id = p_node.id, attempts = c.attempts + 1,
        lease_token_hash = p_token_hash, lease_expires_at = p_expires, leased_at = now(),
        progress = 0
      from picked where c.id = picked.id and c.status = 'pending'
      returning c.id
    )
    select coalesce(array_agg(id), '{}') into v_more from leased;
    v_ids := v_ids || v_more;
  end if;
  return v_ids;
end;
$$;

create or replace function public.node_lease(
  p_node_id bigint, p_token text, p_max_chunks int
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  s wowlab.settings := wowlab.settings();
  v_node public.nodes;
  v_limit int;
  v_token text;
  v_token_hash text;
  v_expires timestamptz;
  v_trusted boolean;
  v_ids bigint[] := '{}';
  v_cj bigint[];
  v_cu int[];
  v_cp boolean[];
  v_cv boolean[];
  v_got bigint[];
  v_users int[];
  v_loads int[];
  v_shares int[];
  v_best int;
  v_progress boolean;
  v_user int;
  v_out jsonb;
  i int;
  k int;
begin
  if p_max_chunks is null or p_max_chunks < 0 then
    perform wowlab.raise_error(
      422, 'InvalidRequest', 'max_chunks must be a non-negative integer', 'max_chunks');
  end if;
  perform wowlab.maybe_reap();
  v_node := wowlab.authenticate(p_node_id, p_token, true);
  v_node := wowlab.mark_seen(v_node.id);
  if p_max_chunks = 0 or v_node.user_id is null then
    return '[]'::jsonb;
  end if;
  v_limit := least(p_max_chunks, 256, v_node.max_parallel - (
    select count(*) from public.sim_chunks c where c.node_id = v_node.id and c.status = 'leased'));
  if v_limit <= 0 then
    return '[]'::jsonb;
  end if;
  v_token := wowlab.new_token(24);
  v_token_hash := wowlab.hash_token(v_token);
  v_expires := now() + make_interval(secs => s.lease_seconds);
  v_trusted := v_node.flagged_at is null and v_node.trust_score >= 10;

  -- Jobs this node may work for, with waiting chunks.
  select coalesce(array_agg(x.id order by x.id), '{}'), coalesce(array_agg(x.user_id order by x.id), '{}'),
    coalesce(array_agg(x.p order by x.id), '{}'), coalesce(array_agg(x.v order by x.id), '{}')
  into v_cj, v_cu, v_cp, v_cv
  from (
    select j.id, j.user_id,
      exists (select 1 from public.sim_chunks c where c.job_id = j.id and c.status = 'pending') as p,
      exists (select 1 from public.sim_chunks c where c.job_id = j.id and c.status = 'verify') as v
    from public.sim_jobs j
    where j.status in ('pending', 'running')
      and (not j.own_nodes_only or j.user_id = v_node.user_id)
      and wowlab.runs_engine(v_node.engines, j.engine, j.engine_version)
      and (v_node.flagged_at is null or j.user_id = v_node.user_id)
      and wowlab.may_use(j.user_id, v_node.id, v_node.user_id, j.allow_public)
      and exists (
        select 1 from public.sim_chunks c where c.job_id = j.id and c.status in ('pending', 'verify'))
  ) x;

  -- The owner's jobs first.
  v_ids := wowlab.take_chunks(
    v_node,
    array(select t.j from unnest(v_cj, v_cu, v_cp, v_cv) t(j, u, p, v) where t.u = v_node.user_id and t.v order by t.j),
    array(select t.j from unnest(v_cj, v_cu, v_cp, v_cv) t(j, u, p, v) where t.u = v_node.user_id and t.p order by t.j),
    v_limit, true, v_trusted, v_token_hash, v_expires);

  -- Then the other users' in turn (leases.fair_shares).
  select array_agg(u order by u) into v_users
  from (select distinct t.u from unnest(v_cu) t(u) where t.u <> v_node.user_id) x;
  if v_users is not null and cardinality(v_ids) < v_limit then
    if cardinality(v_users) > 1 then
      select array_agg(coalesce((
        select count(*) from public.sim_chunks c join public.sim_jobs j on j.id = c.job_id
        where c.status = 'leased' and j.user_id = u), 0)::int order by u)
      into v_loads from unnest(v_users) u;
    else
      v_loads := array[0];
    end if;
    while cardinality(v_ids) < v_limit and cardinality(v_users) > 0 loop
      v_progress := false;
      v_shares := array_fill(0, array[cardinality(v_users)]);
      for k in 1..(v_limit - cardinality(v_ids)) loop
        v_best := 1;
        for i in 2..cardinality(v_users) loop
          if (v_loads[i] + v_shares[i], v_users[i]) < (v_loads[v_best] + v_shares[v_best], v_users[v_best]) then
            v_best := i;
          end if;
        end loop;
        v_shares[v_best] := v_shares[v_best] + 1;
      end loop;
      i := 1;
      while i <= cardinality(v_users) loop
        if v_shares[i] > 0 then
          v_user := v_users[i];
          v_got := wowlab.take_chunks(
            v_node,
            array(select t.j from unnest(v_cj, v_cu, v_cp, v_cv) t(j, u, p, v) where t.u = v_user and t.v order by t.j),
            array(select t.j from unnest(v_cj, v_cu, v_cp, v_cv) t(j, u, p, v) where t.u = v_user and t.p order by t.j),
            v_shares[i], false, v_trusted, v_token_hash, v_expires);
          v_ids := v_ids || v_got;
          v_loads[i] := v_loads[i] + cardinality(v_got);
          v_progress := v_progress or cardinality(v_got) > 0;
          if cardinality(v_got) < v_shares[i] then
            -- nothing more to take from this user's jobs
            v_users := v_users[1:i - 1] || v_users[i + 1:];
            v_loads := v_loads[1:i - 1] || v_loads[i + 1:];
            v_shares := v_shares[1:i - 1] || v_shares[i + 1:];
            continue;
          end if;
        end if;
        i := i + 1;
      end loop;
      exit when not v_progress;
    end loop;
  end if;

  if cardinality(v_ids) = 0 then
    return '[]'::jsonb;
  end if;

  -- Deadlines and budgets from each job's expected rate on this node; the lease history.
  with rated as (
    select c.id, c.job_id, c.iterations,
      wowlab.iteration_rate(j.events_per_iteration, j.seconds_per_iteration,
        v_node.events_per_second) as rate
    from public.sim_chunks c join public.sim_jobs j on j.id = c.job_id
    where c.id = any(v_ids)
  )
  update public.sim_chunks c set lease_deadline_at = now() + make_interval(secs => least(
    greatest(
      10.0 * r.iterations / greatest(coalesce(
        nullif(r.rate, 0), nullif(v_node.iterations_per_second, 0), 200.0), 1e-6),
      s.min_lease_deadline_seconds),
    21600.0))
  from rated r where c.id = r.id and c.lease_token_hash = v_token_hash;
  insert into public.chunk_leases (chunk_id, node_id, token_hash, leased_at)
  select x, v_node.id, v_token_hash, now() from unnest(v_ids) x;
  update public.sim_jobs j set status = 'running', started_at = now(), status_reason = null
  where j.id in (select c.job_id from public.sim_chunks c where c.id = any(v_ids))
    and j.status = 'pending';

  select jsonb_agg(jsonb_build_object(
      'chunk_id', c.id, 'job_id', c.job_id, 'config_hash', c.config_hash, 'engine', j.engine,
      'seed', j.seed, 'seed_offset', c.seed_offset, 'iterations', c.iterations,
      'lease_token', v_token, 'expires_at', wowlab.iso(v_expires),
      'deadline_at', wowlab.iso(c.lease_deadline_at),
      'budget_seconds', case when r.rate > 0 then round(least(greatest(
        10.0 * greatest(c.iterations, 1) / r.rate, 30.0), 600.0)::numeric, 1) end
    ) order by c.job_id, c.seed_offset)
  into v_out
  from public.sim_chunks c
  join public.sim_jobs j on j.id = c.job_id
  cross join lateral (select wowlab.iteration_rate(j.events_per_iteration,
    j.seconds_per_iteration, v_node.events_per_second) as rate) r
  where c.id = any(v_ids);
  return v_out;
end;
$$;
