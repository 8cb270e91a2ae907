-- Realtime: wake-up hints for nodes, and live rows for signed-in users.
--
-- Nodes have no Supabase session (they call with the anon key), so RLS cannot tell one
-- node from another. They listen to public.wowlab_wakeups instead: rows that carry only
-- a topic and a time. Topic 'work' means "chunks may be waiting"; a node's own topic is
-- sha256('wowlab-wake:' || sha256(its token)), which only that node can compute, and says
-- "something about you changed" (it was claimed). No row names a node, user, job or chunk.
-- A hint, never the truth: nodes poll the RPC functions all the same.
--
-- The data tables (nodes, sim_jobs, sim_chunks, notices) are published too, for users'
-- own dashboards: Realtime delivers a change only to subscribers whose RLS lets them
-- select the row, so a user sees only their own jobs, chunks, notices and usable nodes.

create table if not exists public.wowlab_wakeups (
  id bigserial primary key,
  topic text not null,
  created_at timestamptz not null default now()
);
create index if not exists ix_wowlab_wakeups_created on public.wowlab_wakeups (created_at);
alter table public.wowlab_wakeups enable row level security;
revoke all on public.wowlab_wakeups from anon, authenticated;
grant select on public.wowlab_wakeups to anon, authenticated;
drop policy if exists wakeups_are_opaque_hints on public.wowlab_wakeups;
create policy wakeups_are_opaque_hints on public.wowlab_wakeups
  for select to anon, authenticated using (true);

-- A node's own wake-up topic, from the stored hash of its token.
create or replace function wowlab.wake_topic(p_token_hash text) returns text
language sql immutable strict
set search_path = ''
as $$ select encode(extensions.digest(convert_to('wowlab-wake:' || p_token_hash, 'UTF8'), 'sha256'), 'hex') $$;

create or replace function wowlab.wake(p_topic text) returns void
language sql volatile
set search_path = ''
as $$ insert into public.wowlab_wakeups (topic) values (p_topic) $$;

-- Chunks that became available (submitted, requeued, handed back): wake the nodes.
create or replace function wowlab.on_chunks_waiting() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if exists (select 1 from new_rows r where r.status in ('pending', 'verify')) then
    perform wowlab.wake('work');
  end if;
  return null;
end;
$$;

drop trigger if exists wowlab_chunks_inserted on public.sim_chunks;
create trigger wowlab_chunks_inserted after insert on public.sim_chunks
  referencing new table as new_rows
  for each statement execute function wowlab.on_chunks_waiting();
drop trigger if exists wowlab_chunks_updated on public.sim_chunks;
create trigger wowlab_chunks_updated after update on public.sim_chunks
  referencing new table as new_rows
  for each statement execute function wowlab.on_chunks_waiting();

-- A node was claimed (by the portal or claim_node): wake it.
create or replace function wowlab.on_node_claimed() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if old.user_id is null and new.user_id is not null then
    perform wowlab.wake(wowlab.wake_topic(new.token_hash));
  end if;
  return null;
end;
$$;

drop trigger if exists wowlab_node_claimed on public.nodes;
create trigger wowlab_node_claimed after update of user_id on public.nodes
  for each row execute function wowlab.on_node_claimed();

do $$
declare
  t text;
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    raise notice 'wowlab: no supabase_realtime publication (not a Supabase database?); '
      'nodes will poll only';
    return;
  end if;
  foreach t in array array['wowlab_wakeups', 'nodes', 'sim_jobs', 'sim_chunks', 'notices'] loop
    if not exists (
      select 1 from pg_publication_tables
      where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = t
    ) then
      execute format('alter publication supabase_realtime add table public.%I', t);
    end if;
  end loop;
end $$;
