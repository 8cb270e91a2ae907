-- Anonymous node registration is rate-limited, as the portal's POST /api/node/register is
-- (PortalSettings.register_limit_per_minute): anyone holding the anon key may register a
-- node, so without a limit one client could fill public.nodes.
--   * per client address: register_limit_per_minute (60, the portal's default) a minute.
--   * in all: register_limit_total_per_minute (600) a minute, a cap on how fast the table
--     can grow whoever asks (it also means a flood from many addresses can hold new
--     registrations back for a minute; nodes wait and try again).
-- The client address is what the proxy in front of PostgREST saw: the entry
-- client_address_hops (1) from the right of the header client_address_header
-- ('x-forwarded-for'), which PostgREST passes in request.headers. Proxies append the address
-- they saw to X-Forwarded-For, so entries further left are the client's own word. Behind
-- two proxies that append, set the hops to 2; a header the edge sets and overwrites (such
-- as Cloudflare's cf-connecting-ip) can be named instead. Without the header (a direct
-- database connection) the database client's address counts.
-- A refused registration answers 429 RateLimited with the seconds to wait; it adds nothing.

alter table wowlab.settings
  add column if not exists register_limit_per_minute int not null default 60
    check (register_limit_per_minute >= 1);
alter table wowlab.settings
  add column if not exists register_limit_total_per_minute int not null default 600
    check (register_limit_total_per_minute >= 1);

alter table wowlab.settings
  add column if not exists client_address_header text not null default 'x-forwarded-for';
alter table wowlab.settings
  add column if not exists client_address_hops int not null default 1
    check (client_address_hops >= 1);

create table if not exists wowlab.register_attempts (
  id bigint generated always as identity primary key,
  address text not null,
  attempted_at timestamptz not null default clock_timestamp()
);
create index if not exists ix_register_attempts_address_at
  on wowlab.register_attempts (address, attempted_at);
create index if not exists ix_register_attempts_at on wowlab.register_attempts (attempted_at);
alter table wowlab.register_attempts enable row level security;
revoke all on wowlab.register_attempts from anon, authenticated;

-- The calling client's address (see above).
create or replace function wowlab.client_address() returns text
language sql stable
set search_path = ''
as $$
  with hops as (
    select string_to_array(replace(
        nullif(current_setting('request.headers', true), '')::json
          ->> lower(s.client_address_header),
        ' ', ''), ',') as entries,
      s.client_address_hops as n
    from wowlab.settings s where s.id = 1
  )
  select left(coalesce(
    (select nullif(h.entries[greatest(cardinality(h.entries) - h.n + 1, 1)], '') from hops h),
    host(inet_client_addr()),
    'local'), 100)
$$;

-- Count one registration from the caller, or raise 429 when a limit is reached.
create or replace function wowlab.count_registration() returns void
language plpgsql volatile
set search_path = ''
as $$
declare
  s wowlab.settings := wowlab.settings();
  v_address text := wowlab.client_address();
  v_window interval := interval '1 minute';
  v_oldest timestamptz;
begin
  -- One registration at a time: the counts below cannot both pass the limit.
  perform pg_advisory_xact_lock(hashtextextended('wowlab:register', 7));
  delete from wowlab.register_attempts a where a.attempted_at <= clock_timestamp() - v_window;
  select min(a.attempted_at) into v_oldest from wowlab.register_attempts a
  where a.address = v_address
  having count(*) >= s.register_limit_per_minute;
  if v_oldest is null then
    select min(a.attempted_at) into v_oldest from wowlab.register_attempts a
    having count(*) >= s.register_limit_total_per_minute;
  end if;
  if v_oldest is not null then
    perform wowlab.raise_error(
      429, 'RateLimited',
      format('too many node registrations; try again in %s s',
        greatest(1, ceil(extract(epoch from v_oldest + v_window - clock_timestamp())))::int));
  end if;
  insert into wowlab.register_attempts (address) values (v_address);
end;
$$;
revoke all on function wowlab.client_address() from public, anon, authenticated;
revoke all on function wowlab.count_registration() from public, anon, authenticated;

-- register: as before (20260102000500), after counting the registration.
create or replace function public.node_register(p_info jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  s wowlab.settings;
  v_token text := wowlab.new_token(32);
  v_name text;
  v_max jsonb;
  v_node public.nodes;
begin
  perform wowlab.count_registration();
  s := wowlab.settings();
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
