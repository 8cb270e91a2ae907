-- wowlab on Supabase: the private schema, settings, Supabase Auth users as wowlab users,
-- and the helpers the policies and the node functions share.
--
-- Schema "wowlab" is not exposed by the Data API (PostgREST serves public); nothing in it
-- is granted to anon or authenticated except EXECUTE on the few helpers RLS policies call.

create extension if not exists pgcrypto with schema extensions;

create schema if not exists wowlab;
revoke all on schema wowlab from public;
grant usage on schema wowlab to authenticated, service_role;

-- Timings and bounds of the coordinator (the SQL reads them at every call).
create table if not exists wowlab.settings (
  id int primary key default 1 check (id = 1),
  lease_seconds double precision not null default 60,
  heartbeat_seconds double precision not null default 15,
  offline_after_seconds double precision not null default 60,
  claim_lifetime_seconds double precision not null default 900,
  verify_rate double precision not null default 0.05 check (verify_rate between 0 and 1),
  min_lease_deadline_seconds double precision not null default 600,
  verify_timeout_seconds double precision not null default 600,
  stale_node_days int not null default 30,
  unused_config_days int not null default 7,
  max_result_bytes int not null default 1048576,
  reap_interval_seconds double precision not null default 1,
  claim_attempts_per_minute int not null default 10
);
insert into wowlab.settings (id) values (1) on conflict (id) do nothing;
alter table wowlab.settings enable row level security;

-- When expired leases were last reaped (at most once a second from node calls).
create table if not exists wowlab.reaper (
  id int primary key default 1 check (id = 1),
  last_reap_at timestamptz not null default '-infinity'
);
insert into wowlab.reaper (id) values (1) on conflict (id) do nothing;
alter table wowlab.reaper enable row level security;

-- A Supabase Auth user is a wowlab user (public.users keeps the core's integer ids).
create table if not exists wowlab.auth_users (
  auth_id uuid primary key references auth.users (id) on delete cascade,
  user_id int not null unique references public.users (id) on delete cascade
);
alter table wowlab.auth_users enable row level security;

-- Claim attempts of users, for the rate limit (in the database: no per-process state).
create table if not exists wowlab.claim_attempts (
  id bigserial primary key,
  user_id int not null references public.users (id) on delete cascade,
  attempted_at timestamptz not null default now()
);
create index if not exists ix_claim_attempts_user on wowlab.claim_attempts (user_id, attempted_at);
alter table wowlab.claim_attempts enable row level security;

-- Lower bounds of the histogram buckets, as wowlab_core.results.bucket_bounds builds
-- them: b + max(1, b // 100), from 0 up to 2**63 - 1.
create table if not exists wowlab.bucket_bounds (
  idx int primary key,
  lower_bound numeric not null unique
);
alter table wowlab.bucket_bounds enable row level security;
insert into wowlab.bucket_bounds (idx, lower_bound)
with recursive b (idx, v) as (
  select 0, 0::numeric
  union all
  select idx + 1, least(v + greatest(1, floor(v / 100)), 9223372036854775807)
  from b where v < 9223372036854775807
)
select idx, v from b
on conflict do nothing;

-- An error PostgREST answers with the given HTTP status and JSON body
-- {code, message, details, hint}: code is the wowlab error type, details the field.
create or replace function wowlab.raise_error(
  p_status int, p_code text, p_message text, p_field text default null
) returns void
language plpgsql volatile
set search_path = ''
as $$
begin
  raise sqlstate 'PGRST' using
    message = json_build_object(
      'code', p_code, 'message', p_message, 'details', p_field, 'hint', null
    )::text,
    detail = json_build_object('status', p_status, 'headers', json_build_object())::text;
end;
$$;

-- sha256 hex, as wowlab_core.tokens.hash_token.
create or replace function wowlab.hash_token(p_token text) returns text
language sql immutable strict
set search_path = ''
as $$ select encode(extensions.digest(convert_to(p_token, 'UTF8'), 'sha256'), 'hex') $$;

-- A random URL-safe token (secrets.token_urlsafe(n)).
create or replace function wowlab.new_token(p_bytes int) returns text
language sql volatile
set search_path = ''
as $$
  select rtrim(translate(encode(extensions.gen_random_bytes(p_bytes), 'base64'), '+/' || chr(10), '-_'), '=')
$$;

-- ISO 8601 in UTC, as Python's datetime.isoformat() of an aware UTC time.
create or replace function wowlab.iso(p_at timestamptz) returns text
language sql immutable
set search_path = ''
as $$ select to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') $$;

-- The wowlab user of the caller's Supabase Auth session (null: anonymous, or unknown).
create or replace function wowlab.current_user_id() returns int
language sql stable security definer
set search_path = ''
as $$ select a.user_id from wowlab.auth_users a where a.auth_id = auth.uid() $$;

create or replace function wowlab.are_friends(p_a int, p_b int) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.friendships f
    where f.status = 'accepted'
      and ((f.requester_id = p_a and f.addressee_id = p_b)
        or (f.requester_id = p_b and f.addressee_id = p_a))
  )
$$;

create or replace function wowlab.is_guild_member(p_guild int, p_user int) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.guild_members m where m.guild_id = p_guild and m.user_id = p_user
  )
$$;

create or replace function wowlab.owns_guild(p_guild int, p_user int) returns boolean
language sql stable security definer
set search_path = ''
as $$ select exists (select 1 from public.guilds g where g.id = p_guild and g.owner_id = p_user) $$;

create or replace function wowlab.share_a_guild(p_a int, p_b int) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.guild_members m1
    join public.guild_members m2 on m2.guild_id = m1.guild_id
    where m1.user_id = p_a and m2.user_id = p_b
  )
$$;

-- wowlab_core.access.allowed_clause: may user p_user use node p_node owned by p_owner?
create or replace function wowlab.may_use(
  p_user int, p_node int, p_owner int, p_include_public boolean
) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select p_owner = p_user or exists (
    select 1 from public.node_access g
    where g.node_id = p_node
      and (
        (g.access_type = 'public' and p_include_public)
        or (g.access_type = 'user' and g.target_id = p_user)
        or (g.access_type = 'guild' and exists (
              select 1 from public.guild_members m
              where m.guild_id = g.target_id and m.user_id = p_user))
        or (g.access_type = 'friends' and exists (
              select 1 from public.friendships f
              where f.status = 'accepted'
                and ((f.requester_id = p_owner and f.addressee_id = p_user)
                  or (f.requester_id = p_user and f.addressee_id = p_owner))))
      )
  )
$$;

create or replace function wowlab.owns_node(p_node int, p_user int) returns boolean
language sql stable security definer
set search_path = ''
as $$ select exists (select 1 from public.nodes n where n.id = p_node and n.user_id = p_user) $$;

create or replace function wowlab.owns_job(p_job int, p_user int) returns boolean
language sql stable security definer
set search_path = ''
as $$ select exists (select 1 from public.sim_jobs j where j.id = p_job and j.user_id = p_user) $$;

create or replace function wowlab.owns_config(p_hash text, p_user int) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (select 1 from public.sim_jobs j where j.config_hash = p_hash and j.user_id = p_user)
$$;

revoke all on all functions in schema wowlab from public;
grant execute on function
  wowlab.current_user_id(), wowlab.are_friends(int, int), wowlab.is_guild_member(int, int),
  wowlab.owns_guild(int, int), wowlab.share_a_guild(int, int),
  wowlab.may_use(int, int, int, boolean), wowlab.owns_node(int, int), wowlab.owns_job(int, int),
  wowlab.owns_config(text, int)
to authenticated, service_role;

-- Each new Supabase Auth user gets a wowlab user (a unique username from the sign-up
-- metadata or the e-mail address); deleting the auth user deletes the wowlab user.
create or replace function wowlab.on_auth_user_created() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  base text;
  candidate text;
  n int := 1;
  new_id int;
begin
  base := coalesce(
    nullif(new.raw_user_meta_data ->> 'username', ''),
    nullif(split_part(coalesce(new.email, ''), '@', 1), ''),
    'user'
  );
  base := left(regexp_replace(base, '[^A-Za-z0-9_.-]', '', 'g'), 56);
  if base = '' then
    base := 'user';
  end if;
  candidate := base;
  while exists (select 1 from public.users u where lower(u.username) = lower(candidate)) loop
    n := n + 1;
    candidate := base || '-' || n;
  end loop;
  insert into public.users (username, email, is_admin, created_at)
  values (candidate, left(new.email, 254), false, coalesce(new.created_at, now()))
  returning id into new_id;
  insert into wowlab.auth_users (auth_id, user_id) values (new.id, new_id);
  return new;
end;
$$;

create or replace function wowlab.on_auth_user_deleted() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  delete from public.users u
  using wowlab.auth_users a
  where a.auth_id = old.id and u.id = a.user_id;
  return old;
end;
$$;

create or replace function wowlab.on_auth_user_email() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  update public.users u set email = left(new.email, 254)
  from wowlab.auth_users a
  where a.auth_id = new.id and u.id = a.user_id;
  return new;
end;
$$;

drop trigger if exists wowlab_auth_user_created on auth.users;
create trigger wowlab_auth_user_created after insert on auth.users
  for each row execute function wowlab.on_auth_user_created();
drop trigger if exists wowlab_auth_user_deleted on auth.users;
create trigger wowlab_auth_user_deleted before delete on auth.users
  for each row execute function wowlab.on_auth_user_deleted();
drop trigger if exists wowlab_auth_user_email on auth.users;
create trigger wowlab_auth_user_email after update of email on auth.users
  for each row execute function wowlab.on_auth_user_email();
