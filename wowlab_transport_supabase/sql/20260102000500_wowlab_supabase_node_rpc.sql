-- The node functions, called by nodes through PostgREST RPC (POST /rest/v1/rpc/<name>)
-- with the anon key. Each is SECURITY DEFINER with an empty search_path, checks the node's
-- token (stored as its sha256, as the core stores it), and is executable only by the roles
-- that need it. Errors are PostgREST errors with the HTTP status of the core's error type.
-- Ports of wowlab_core.coordinator / nodes / leases; the leasing rules are the core's.

-- register: a pending node with a fresh token and claim code (nodes.register_node).
create or replace function public.node_register(p_info jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  s wowlab.settings := wowlab.settings();
  v_token text := wowlab.new_token(32);
  v_name text;
  v_max jsonb;
  v_node public.nodes;
begin
  if p_info is null or jsonb_typeof(p_info) <> 'object' then
    perform wowlab.raise_error(422, 'InvalidRequest', 'NodeInfo must be a JSON object');
  end if;
  v_name := p_info ->> 'name';
  if jsonb_typeof(p_info -> 'name') is distinct from 'string' or btrim(v_name) = ''
     or length(v_name) > 100 then
    perform wowlab.raise_error(422, 'InvalidRequest', 'node name must be 1 to 100 characters', 'name');
  end if;
  v_max := coalesce(p_info -> 'max_parallel', '1');
  if not wowlab.is_json_integer(v_max) or v_max::text::numeric not between 1 and 256 then
    perform wowlab.raise_error(
      422, 'InvalidRequest', 'max_parallel must be between 1 and 256', 'max_parallel');
  end if;
  perform wowlab.check_capabilities(p_info -> 'engines', p_info -> 'labels');
  insert into public.nodes (
    name, max_parallel, cores, platform, version, engines, labels, token_hash, claim_code,
    claim_expires_at, status, last_seen_at, trust_score, created_at
  ) values (
    btrim(v_name), v_max::text::int,
    case when wowlab.is_json_integer(p_info -> 'cores') then (p_info ->> 'cores')::int end,
    nullif(left(coalesce(p_info ->> 'platform', ''), 128), ''),
    nullif(left(coalesce(p_info ->> 'version', ''), 64), ''),
    case when jsonb_typeof(p_info -> 'engines') = 'object' then p_info -> 'engines' end,
    case when jsonb_typeof(p_info -> 'labels') = 'array'
      then wowlab.clean_labels(p_info -> 'labels') end,
    wowlab.hash_token(v_token), wowlab.new_claim_code(),
    now() + make_interval(secs => s.claim_lifetime_seconds), 'pending', now(), 0, now()
  ) returning * into v_node;
  return jsonb_build_object(
    'node_id', v_node.id, 'token', v_token, 'claim_code', v_node.claim_code,
    'claim_expires_at', wowlab.iso(v_node.claim_expires_at)
  );
end;
$$;

-- claim status: claimed (by whom), or the code to show, renewed when it expired.
create or replace function public.node_claim_status(p_node_id bigint, p_token text) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  s wowlab.settings := wowlab.settings();
  v_node public.nodes := wowlab.authenticate(p_node_id, p_token, true);
begin
  if v_node.user_id is not null then
    return jsonb_build_object(
      'claimed', true,
      'owner', (select u.username from public.users u where u.id = v_node.user_id),
      'name', v_node.name, 'max_parallel', v_node.max_parallel,
      'heartbeat_seconds', s.heartbeat_seconds
    );
  end if;
  if v_node.claim_code is null or v_node.claim_expires_at is null
     or v_node.claim_expires_at <= now() then
    update public.nodes n set
      claim_code = wowlab.new_claim_code(),
      claim_expires_at = now() + make_interval(secs => s.claim_lifetime_seconds)
    where n.id = v_node.id
    returning * into v_node;
  end if;
  update public.nodes n set last_seen_at = now() where n.id = v_node.id;
  return jsonb_build_object(
    'claimed', false, 'name', v_node.name, 'claim_code', v_node.claim_code,
    'claim_expires_at', wowlab.iso(v_node.claim_expires_at),
    'heartbeat_seconds', s.heartbeat_seconds
  );
end;
$$;

-- go offline: a clean shutdown.
create or replace function public.node_go_offline(p_node_id bigint, p_token text) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_node public.nodes := wowlab.authenticate(p_node_id, p_token);
begin
  update public.nodes n set
    status = case when n.user_id is not null then 'offline' else n.status end,
    last_seen_at = now()
  where n.id = v_node.id;
  return jsonb_build_object('ok', true);
end;
$$;

-- get config: only for a node that has leased a chunk of it.
create or replace function public.node_get_config(
  p_node_id bigint, p_token text, p_config_hash text
) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_node public.nodes := wowlab.authenticate(p_node_id, p_token);
  v_config public.sim_configs;
begin
  if exists (
    select 1 from public.chunk_leases l join public.sim_chunks c on c.id = l.chunk_id
    where l.node_id = v_node.id and c.config_hash = p_config_hash
  ) then
    select * into v_config from public.sim_configs g where g.hash = p_config_hash;
  end if;
  if v_config.hash is null then
    perform wowlab.raise_error(
      404, 'NotFound', format('no config %s... for this node', left(coalesce(p_config_hash, ''), 12)),
      'config_hash');
  end if;
  return jsonb_build_object(
    'config_hash', v_config.hash, 'engine', v_config.engine, 'config', v_config.config);
end;
$$;

-- claim for users: a signed-in user claims the pending node showing p_code.
create or replace function public.claim_node(p_code text, p_name text default null) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  s wowlab.settings := wowlab.settings();
  v_user int := wowlab.current_user_id();
  v_code text;
  v_node public.nodes;
begin
  if v_user is null then
    perform wowlab.raise_error(401, 'AuthenticationFailed', 'sign in to claim a node');
  end if;
  -- Count the attempt before looking at the code: guessing codes is rate-limited. A wrong
  -- or expired code is answered in the result (not raised), so that the transaction, and
  -- with it the counted attempt, is committed.
  if (select count(*) from wowlab.claim_attempts a
      where a.user_id = v_user and a.attempted_at > now() - interval '1 minute')
     >= s.claim_attempts_per_minute then
    perform wowlab.raise_error(429, 'RateLimited', 'too many claim attempts; try again in a minute');
  end if;
  insert into wowlab.claim_attempts (user_id) values (v_user);
  v_code := upper(translate(coalesce(p_code, ''), E' -\t', ''));
  if v_code !~ '^[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{6}$' then
    return jsonb_build_object('claimed', false, 'error', 'ClaimCodeInvalid', 'detail',
      'a claim code is 6 letters and digits (no 0, O, 1 or I), like ABC-234');
  end if;
  select * into v_node from public.nodes n
  where n.claim_code = v_code and n.user_id is null for update;
  if v_node.id is null then
    return jsonb_build_object('claimed', false, 'error', 'ClaimCodeInvalid', 'detail',
      'no node is waiting with this claim code');
  end if;
  if v_node.claim_expires_at is null or v_node.claim_expires_at <= now() then
    return jsonb_build_object('claimed', false, 'error', 'ClaimCodeExpired', 'detail',
      'this claim code has expired; the node shows a new one');
  end if;
  if p_name is not null and (btrim(p_name) = '' or length(p_name) > 100) then
    perform wowlab.raise_error(422, 'InvalidRequest', 'node name must be 1 to 100 characters', 'name');
  end if;
  update public.nodes n set
    name = coalesce(btrim(p_name), n.name), user_id = v_user, claim_code = null,
    claim_expires_at = null, claimed_at = now(), status = 'online'
  where n.id = v_node.id
  returning * into v_node;
  insert into public.node_access (node_id, access_type, target_id, created_at)
  select v_node.id, 'owner', null, now()
  where not exists (
    select 1 from public.node_access g
    where g.node_id = v_node.id and g.access_type = 'owner' and g.target_id is null
  );
  return jsonb_build_object('claimed', true, 'node_id', v_node.id, 'name', v_node.name);
end;
$$;

-- cancel a job of one's own (job_states.cancel_job).
create or replace function public.cancel_job(p_job_id bigint) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_user int := wowlab.current_user_id();
  v_status text;
begin
  if v_user is null then
    perform wowlab.raise_error(401, 'AuthenticationFailed', 'sign in to cancel a job');
  end if;
  select j.status into v_status from public.sim_jobs j
  where j.id = p_job_id and j.user_id = v_user for update;
  if v_status is null then
    perform wowlab.raise_error(404, 'NotFound', format('no job #%s of yours', p_job_id), 'job_id');
  end if;
  if v_status not in ('pending', 'running') then
    return false;
  end if;
  update public.sim_jobs j set status = 'cancelled', finished_at = now() where j.id = p_job_id;
  update public.sim_chunks c set status = 'cancelled', lease_expires_at = null
  where c.job_id = p_job_id and c.status in ('pending', 'leased', 'verify');
  return true;
end;
$$;

-- release: hand leased chunks back without counting an attempt (leases.release_chunks).
create or replace function public.node_release(
  p_node_id bigint, p_token text, p_chunk_ids bigint[], p_lease_token text
) returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_node public.nodes := wowlab.authenticate(p_node_id, p_token);
  v_count int;
begin
  if p_chunk_ids is null or cardinality(p_chunk_ids) = 0 then
    return 0;
  end if;
  update public.sim_chunks c set
    status = case when c.verify_state in ('pending', 'tiebreak') then 'verify' else 'pending' end,
    attempts = case when c.attempts > 0 then c.attempts - 1 else 0 end,
    lease_token_hash = null, lease_expires_at = null, lease_deadline_at = null, progress = 0
  where c.id = any(p_chunk_ids) and c.node_id = v_node.id and c.status = 'leased'
    and c.lease_token_hash = wowlab.hash_token(p_lease_token);
  get diagnostics v_count = row_count;
  update public.sim_chunks c set lease_token_hash = null
  where c.id = any(p_chunk_ids) and c.node_id = v_node.id and c.status = 'cancelled';
  return v_count;
end;
$$;

-- heartbeat: extend the named leases (never past their hard deadline), record progress,
-- hand back every other lease of the node; say which named chunks to stop.
create or replace function public.node_heartbeat(
  p_node_id bigint, p_token text, p_beat jsonb
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  s wowlab.settings := wowlab.settings();
  v_node public.nodes;
  v_named jsonb := '{}';
  v_item jsonb;
  v_kept bigint[] := '{}';
  v_released bigint[] := '{}';
  v_forget bigint[] := '{}';
  v_mine jsonb;
  v_done bigint;
  r record;
begin
  if p_beat is null or jsonb_typeof(p_beat) <> 'object' then
    perform wowlab.raise_error(422, 'InvalidRequest', 'Heartbeat must be a JSON object');
  end if;
  if jsonb_typeof(p_beat -> 'running') is distinct from 'array' then
    perform wowlab.raise_error(
      422, 'InvalidRequest', 'running must be a list of running chunks', 'running');
  end if;
  for v_item in select * from jsonb_array_elements(p_beat -> 'running') loop
    if jsonb_typeof(v_item) <> 'object' or not (v_item ? 'chunk_id') or not (v_item ? 'lease_token') then
      perform wowlab.raise_error(422, 'InvalidRequest',
        'RunningChunk: each running chunk needs chunk_id and lease_token', 'running');
    end if;
    if wowlab.is_json_integer(v_item -> 'chunk_id') then
      v_named := v_named || jsonb_build_object(v_item ->> 'chunk_id', v_item);
    end if;
  end loop;
  perform wowlab.maybe_reap();
  v_node := wowlab.authenticate(p_node_id, p_token);
  perform wowlab.check_capabilities(p_beat -> 'engines', p_beat -> 'labels');
  v_node := wowlab.mark_seen(v_node.id);
  update public.nodes n set
    engines = case when jsonb_typeof(p_beat -> 'engines') = 'object' then p_beat -> 'engines'
      else n.engines end,
    labels = case when jsonb_typeof(p_beat -> 'labels') = 'array'
      then wowlab.clean_labels(p_beat -> 'labels') else n.labels end
  where n.id = v_node.id
    and (jsonb_typeof(p_beat -> 'engines') = 'object' or jsonb_typeof(p_beat -> 'labels') = 'array');
  for r in
    select c.id, c.status, c.lease_token_hash, c.lease_deadline_at, c.iterations
    from public.sim_chunks c
    where c.node_id = v_node.id
      and (c.status = 'leased' or (c.status = 'cancelled' and c.lease_token_hash is not null))
  loop
    if r.status = 'cancelled' then
      v_forget := v_forget || r.id;
      continue;
    end if;
    v_mine := v_named -> r.id::text;
    if v_mine is null or jsonb_typeof(v_mine -> 'lease_token') <> 'string'
       or wowlab.hash_token(v_mine ->> 'lease_token') is distinct from r.lease_token_hash then
      v_released := v_released || r.id;
      continue;
    end if;
    if r.lease_deadline_at is not null and r.lease_deadline_at <= now() then
      continue;  -- past its hard deadline: the reaper takes it back; the node stops
    end if;
    v_done := case when wowlab.is_json_integer(v_mine -> 'iterations_done')
      then least(greatest((v_mine ->> 'iterations_done')::numeric, 0), r.iterations)::bigint
      else 0 end;
    update public.sim_chunks c set
      lease_expires_at = least(
        now() + make_interval(secs => s.lease_seconds),
        coalesce(r.lease_deadline_at, 'infinity'::timestamptz)),
      progress = v_done
    where c.id = r.id and c.node_id = v_node.id and c.status = 'leased';
    v_kept := v_kept || r.id;
  end loop;
  if cardinality(v_released) > 0 then
    update public.sim_chunks c set
      status = case when c.verify_state in ('pending', 'tiebreak') then 'verify' else 'pending' end,
      attempts = case when c.attempts > 0 then c.attempts - 1 else 0 end,
      lease_token_hash = null, lease_expires_at = null, lease_deadline_at = null, progress = 0
    where c.id = any(v_released) and c.node_id = v_node.id and c.status = 'leased';
  end if;
  if cardinality(v_forget) > 0 then
    update public.sim_chunks c set lease_token_hash = null
    where c.id = any(v_forget) and c.node_id = v_node.id and c.status = 'cancelled';
  end if;
  return jsonb_build_object(
    'status', v_node.status,
    'cancelled_chunks', coalesce((
      select jsonb_agg(k::bigint order by k::bigint) from jsonb_object_keys(v_named) k
      where not (k::bigint = any(v_kept))), '[]'::jsonb),
    'max_parallel', v_node.max_parallel,
    'heartbeat_seconds', s.heartbeat_seconds,
    'released_chunks', coalesce((
      select jsonb_agg(x order by x) from unnest(v_released) x), '[]'::jsonb)
  );
end;
$$;
