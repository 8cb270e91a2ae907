-- Helpers of the node functions: authentication, presence, job endings, the reaper.
-- Ports of wowlab_core.nodes, job_states and leases.requeue_expired; the numbers are the
-- core's (MAX_EXPIRATIONS 5, SEEN_RESOLUTION 1 s ...).

create or replace function wowlab.settings() returns wowlab.settings
language sql stable
set search_path = ''
as $$ select * from wowlab.settings where id = 1 $$;

-- The node whose token this is (wowlab_core.nodes.authenticate_node); 401 otherwise.
create or replace function wowlab.authenticate(
  p_node_id bigint, p_token text, p_lock boolean default false
) returns public.nodes
language plpgsql volatile
set search_path = ''
as $$
declare
  v_node public.nodes;
begin
  if p_lock then
    select * into v_node from public.nodes n where n.id = p_node_id for update;
  else
    select * into v_node from public.nodes n where n.id = p_node_id;
  end if;
  if v_node.id is null or p_token is null
     or v_node.token_hash is distinct from wowlab.hash_token(p_token) then
    perform wowlab.raise_error(401, 'AuthenticationFailed', 'node id or token is not valid');
  end if;
  return v_node;
end;
$$;

-- wowlab_core.nodes.mark_seen; returns the node as it is now.
create or replace function wowlab.mark_seen(p_node_id bigint) returns public.nodes
language sql volatile
set search_path = ''
as $$
  update public.nodes n set
    last_seen_at = case
      when n.last_seen_at is null or now() - n.last_seen_at >= interval '1 second' then now()
      else n.last_seen_at end,
    status = case when n.user_id is not null then 'online' else n.status end
  where n.id = p_node_id
  returning n.*
$$;

-- wowlab_core.job_states.fail_job.
create or replace function wowlab.fail_job(p_job_id bigint, p_error text) returns void
language sql volatile
set search_path = ''
as $$
  update public.sim_jobs j
  set status = 'failed', error = left(p_error, 2000), finished_at = now()
  where j.id = p_job_id;
  update public.sim_chunks c set status = 'cancelled', lease_expires_at = null
  where c.job_id = p_job_id and c.status in ('pending', 'leased', 'verify');
$$;

-- wowlab_core.completions.count_progress: add iterations; a job whose iterations are all
-- counted is announced to the finisher (NOTIFY wowlab_finish), which merges it.
create or replace function wowlab.count_progress(p_job_id bigint, p_delta bigint) returns boolean
language plpgsql volatile
set search_path = ''
as $$
declare
  v_done bigint;
  v_total bigint;
  v_status text;
begin
  if p_delta = 0 then
    return false;
  end if;
  update public.sim_jobs j set completed_iterations = j.completed_iterations + p_delta
  where j.id = p_job_id
  returning j.completed_iterations, j.total_iterations, j.status into v_done, v_total, v_status;
  if v_done >= v_total and v_status in ('pending', 'running') then
    perform pg_notify('wowlab_finish', p_job_id::text);
    return true;
  end if;
  return false;
end;
$$;

-- Engine filter of wowlab_core.leases (a node that did not say gets any chunk).
create or replace function wowlab.runs_engine(
  p_engines jsonb, p_engine text, p_version text
) returns boolean
language sql immutable
set search_path = ''
as $$
  select case
    when p_engines is null or jsonb_typeof(p_engines) <> 'object' then true
    else jsonb_typeof(p_engines -> p_engine) = 'string'
      and (p_version is null or p_engines ->> p_engine = p_version)
  end
$$;

-- wowlab_core.leases.online_nodes_for: online nodes that may run the job's chunks.
create or replace function wowlab.online_nodes_for(p_job_id bigint) returns setof public.nodes
language sql stable
set search_path = ''
as $$
  select n.* from public.nodes n
  join public.sim_jobs j on j.id = p_job_id
  where n.user_id is not null and n.status = 'online'
    and wowlab.may_use(j.user_id, n.id, n.user_id, j.allow_public)
    and (n.flagged_at is null or n.user_id = j.user_id)
    and (not j.own_nodes_only or n.user_id = j.user_id)
    and wowlab.runs_engine(n.engines, j.engine, j.engine_version)
  order by n.id
$$;

-- A free claim code (wowlab_core.claim_codes alphabet, 32 symbols: unbiased from bytes).
create or replace function wowlab.new_claim_code() returns text
language plpgsql volatile
set search_path = ''
as $$
declare
  v_alphabet constant text := 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  v_bytes bytea;
  v_code text;
begin
  update public.nodes n set claim_code = null
  where n.user_id is null and n.claim_expires_at < now() and n.claim_code is not null;
  for attempt in 1..20 loop
    v_bytes := extensions.gen_random_bytes(6);
    v_code := '';
    for i in 0..5 loop
      v_code := v_code || substr(v_alphabet, (get_byte(v_bytes, i) % 32) + 1, 1);
    end loop;
    if not exists (select 1 from public.nodes n where n.claim_code = v_code) then
      return v_code;
    end if;
  end loop;
  raise exception 'could not find a free claim code after 20 tries';
end;
$$;

-- wowlab_core.nodes.check_capabilities.
create or replace function wowlab.check_capabilities(p_engines jsonb, p_labels jsonb) returns void
language plpgsql immutable
set search_path = ''
as $$
begin
  if p_engines is not null and jsonb_typeof(p_engines) <> 'null' and (
    jsonb_typeof(p_engines) <> 'object'
    or (select count(*) from jsonb_object_keys(p_engines)) > 32
    or exists (
      select 1 from jsonb_each(p_engines) e
      where jsonb_typeof(e.value) <> 'string' or length(e.key) not between 1 and 64
        or length(e.value #>> '{}') > 64
    )
  ) then
    perform wowlab.raise_error(
      422, 'InvalidRequest', 'engines must map up to 32 engine names to versions', 'engines');
  end if;
  if p_labels is not null and jsonb_typeof(p_labels) <> 'null' and (
    jsonb_typeof(p_labels) <> 'array'
    or jsonb_array_length(p_labels) > 32
    or exists (
      select 1 from jsonb_array_elements(p_labels) x
      where jsonb_typeof(x) <> 'string' or length(btrim(x #>> '{}')) not between 1 and 64
    )
  ) then
    perform wowlab.raise_error(
      422, 'InvalidRequest', 'labels must be a list of up to 32 names of 1 to 64 characters',
      'labels');
  end if;
end;
$$;

create or replace function wowlab.clean_labels(p_labels jsonb) returns jsonb
language sql immutable
set search_path = ''
as $$
  select coalesce(jsonb_agg(distinct btrim(x #>> '{}') order by btrim(x #>> '{}')), '[]'::jsonb)
  from jsonb_array_elements(p_labels) x
$$;

-- wowlab_core.leases.requeue_expired, nodes.mark_offline_nodes and
-- verification.accept_stale_checks: what the coordinator's reaper does.
create or replace function wowlab.reap() returns int
language plpgsql volatile
set search_path = ''
as $$
declare
  s wowlab.settings := wowlab.settings();
  r record;
  v_requeued int := 0;
begin
  for r in
    update public.sim_chunks c set
      status = case when c.verify_state in ('pending', 'tiebreak') then 'verify' else 'pending' end,
      lease_token_hash = null, lease_expires_at = null, lease_deadline_at = null,
      progress = 0, expirations = c.expirations + 1
    where c.status = 'leased' and c.lease_expires_at < now()
    returning c.id, c.job_id, c.expirations, c.seed_offset
  loop
    v_requeued := v_requeued + 1;
    if r.expirations >= 5 and exists (
      select 1 from public.sim_jobs j where j.id = r.job_id and j.status in ('pending', 'running')
    ) then
      perform wowlab.fail_job(r.job_id, format(
        'chunk %s (iterations from %s) timed out %s times; the nodes running it stopped answering',
        r.id, r.seed_offset, r.expirations));
    end if;
  end loop;
  update public.nodes n set status = 'offline'
  where n.status = 'online'
    and n.last_seen_at < now() - make_interval(secs => s.offline_after_seconds);
  for r in
    with accepted as (
      update public.sim_chunks c set status = 'completed', verify_state = null, completed_at = now()
      where c.status = 'verify' and c.verify_state = 'pending'
        and c.completed_at < now() - make_interval(secs => s.verify_timeout_seconds)
      returning c.job_id, c.iterations
    )
    select a.job_id, sum(a.iterations) as n from accepted a group by a.job_id order by a.job_id
  loop
    perform wowlab.count_progress(r.job_id, r.n);
  end loop;
  delete from public.wowlab_wakeups w where w.created_at < now() - interval '10 minutes';
  return v_requeued;
end;
$$;

-- The reaper from node calls: at most every reap_interval_seconds (1), never waiting
-- for another caller.
create or replace function wowlab.maybe_reap() returns void
language plpgsql volatile
set search_path = ''
as $$
begin
  perform 1 from wowlab.reaper r
  where r.id = 1
    and r.last_reap_at <= now() - make_interval(secs => (wowlab.settings()).reap_interval_seconds)
  for update skip locked;
  if found then
    update wowlab.reaper set last_reap_at = now() where id = 1;
    perform wowlab.reap();
  end if;
end;
$$;

revoke all on all functions in schema wowlab from public;
grant execute on function
  wowlab.current_user_id(), wowlab.are_friends(int, int), wowlab.is_guild_member(int, int),
  wowlab.owns_guild(int, int), wowlab.share_a_guild(int, int),
  wowlab.may_use(int, int, int, boolean), wowlab.owns_node(int, int), wowlab.owns_job(int, int),
  wowlab.owns_config(text, int)
to authenticated, service_role;
