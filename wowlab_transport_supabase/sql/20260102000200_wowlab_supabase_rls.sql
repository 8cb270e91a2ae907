-- Row level security: deny by default on every table, then allow what each role needs.
--
-- anon (nodes, visitors): nothing at all; nodes go through the SECURITY DEFINER node
-- functions. authenticated (users signed in with Supabase Auth): their own rows, and the
-- rows of what is shared with them. service_role (the portal, the finisher): everything
-- (it bypasses RLS, as on Supabase). Supabase grants every table in public to the API
-- roles; here the privileges are cut to the columns a user may touch too, so that an
-- owner cannot, say, clear their node's flag or raise its trust score.

do $$
declare
  t text;
begin
  foreach t in array array[
    'users', 'guilds', 'guild_members', 'friendships', 'guild_invites', 'api_tokens',
    'web_sessions', 'login_failures', 'nodes', 'node_access', 'sim_configs', 'sim_jobs',
    'sim_chunks', 'chunk_leases', 'notices', 'alembic_version'
  ] loop
    execute format('alter table public.%I enable row level security', t);
    execute format('revoke all on public.%I from anon, authenticated', t);
    execute format('grant all on public.%I to service_role', t);
  end loop;
end $$;
revoke all on all sequences in schema public from anon, authenticated;

-- Server-side defaults for the columns the ORM fills in, on the tables users may insert
-- into through the Data API (a default changes nothing for the portal).
alter table public.guilds alter column created_at set default now();
alter table public.guild_members alter column created_at set default now();
alter table public.guild_members alter column role set default 'member';
alter table public.guild_invites alter column created_at set default now();
alter table public.friendships alter column created_at set default now();
alter table public.friendships alter column status set default 'pending';
alter table public.node_access alter column created_at set default now();

-- What authenticated users may touch (RLS then says which rows).
grant select (id, username, created_at) on public.users to authenticated;
grant update (username) on public.users to authenticated;
grant select on public.guilds to authenticated;
grant insert (name, owner_id) , update (name), delete on public.guilds to authenticated;
grant select, insert (guild_id, user_id, role), delete on public.guild_members to authenticated;
grant select, insert (guild_id, user_id, invited_by), delete on public.guild_invites to authenticated;
grant select, insert (requester_id, addressee_id), update (status), delete
  on public.friendships to authenticated;
grant select (
  id, user_id, name, max_parallel, cores, status, last_seen_at, version, platform,
  iterations_per_second, engines, labels, trust_score, flagged_at, flag_reason,
  events_per_second, created_at, claimed_at
) on public.nodes to authenticated;
grant update (name, max_parallel), delete on public.nodes to authenticated;
grant select, insert (node_id, access_type, target_id), delete on public.node_access to authenticated;
grant select on public.sim_configs to authenticated;
grant select, delete on public.sim_jobs to authenticated;
grant select on public.sim_chunks to authenticated;
grant select, update (read_at), delete on public.notices to authenticated;
grant usage on sequence public.guilds_id_seq, public.friendships_id_seq,
  public.node_access_id_seq to authenticated;

-- (re)create the policies: drop the ones this file made before.
do $$
declare
  p record;
begin
  for p in
    select schemaname, tablename, policyname from pg_policies
    where schemaname = 'public' and policyname like 'wowlab\_%'
  loop
    execute format('drop policy %I on %I.%I', p.policyname, p.schemaname, p.tablename);
  end loop;
end $$;

-- users: yourself, your friends and friend requests, your guild mates.
create policy wowlab_users_select on public.users for select to authenticated
  using (
    id = (select wowlab.current_user_id())
    or exists (
      select 1 from public.friendships f
      where (f.requester_id = (select wowlab.current_user_id()) and f.addressee_id = users.id)
         or (f.addressee_id = (select wowlab.current_user_id()) and f.requester_id = users.id)
    )
    or wowlab.share_a_guild((select wowlab.current_user_id()), id)
  );
create policy wowlab_users_update on public.users for update to authenticated
  using (id = (select wowlab.current_user_id()))
  with check (id = (select wowlab.current_user_id()));

-- guilds: members and invitees see it; its owner changes or deletes it.
create policy wowlab_guilds_select on public.guilds for select to authenticated
  using (
    owner_id = (select wowlab.current_user_id())
    or wowlab.is_guild_member(id, (select wowlab.current_user_id()))
    or exists (
      select 1 from public.guild_invites i
      where i.guild_id = guilds.id and i.user_id = (select wowlab.current_user_id())
    )
  );
create policy wowlab_guilds_insert on public.guilds for insert to authenticated
  with check (owner_id = (select wowlab.current_user_id()));
create policy wowlab_guilds_update on public.guilds for update to authenticated
  using (owner_id = (select wowlab.current_user_id()))
  with check (owner_id = (select wowlab.current_user_id()));
create policy wowlab_guilds_delete on public.guilds for delete to authenticated
  using (owner_id = (select wowlab.current_user_id()));

-- guild_members: members see each other; the guild's owner adds members, an invitee
-- joins as a plain member; a member leaves, the owner removes.
create policy wowlab_guild_members_select on public.guild_members for select to authenticated
  using (wowlab.is_guild_member(guild_id, (select wowlab.current_user_id())));
create policy wowlab_guild_members_insert on public.guild_members for insert to authenticated
  with check (
    wowlab.owns_guild(guild_id, (select wowlab.current_user_id()))
    or (
      user_id = (select wowlab.current_user_id()) and role = 'member'
      and exists (
        select 1 from public.guild_invites i
        where i.guild_id = guild_members.guild_id and i.user_id = guild_members.user_id
      )
    )
  );
create policy wowlab_guild_members_delete on public.guild_members for delete to authenticated
  using (
    user_id = (select wowlab.current_user_id())
    or wowlab.owns_guild(guild_id, (select wowlab.current_user_id()))
  );

-- guild_invites: the invitee and the guild's members see them; the owner invites; the
-- invitee or the owner deletes.
create policy wowlab_guild_invites_select on public.guild_invites for select to authenticated
  using (
    user_id = (select wowlab.current_user_id())
    or wowlab.is_guild_member(guild_id, (select wowlab.current_user_id()))
  );
create policy wowlab_guild_invites_insert on public.guild_invites for insert to authenticated
  with check (
    wowlab.owns_guild(guild_id, (select wowlab.current_user_id()))
    and invited_by = (select wowlab.current_user_id())
  );
create policy wowlab_guild_invites_delete on public.guild_invites for delete to authenticated
  using (
    user_id = (select wowlab.current_user_id())
    or wowlab.owns_guild(guild_id, (select wowlab.current_user_id()))
  );

-- friendships: both sides see it; you ask (pending); the asked accepts; either ends it.
create policy wowlab_friendships_select on public.friendships for select to authenticated
  using ((select wowlab.current_user_id()) in (requester_id, addressee_id));
create policy wowlab_friendships_insert on public.friendships for insert to authenticated
  with check (requester_id = (select wowlab.current_user_id()) and status = 'pending');
create policy wowlab_friendships_update on public.friendships for update to authenticated
  using (addressee_id = (select wowlab.current_user_id()))
  with check (addressee_id = (select wowlab.current_user_id()));
create policy wowlab_friendships_delete on public.friendships for delete to authenticated
  using ((select wowlab.current_user_id()) in (requester_id, addressee_id));

-- nodes: the owner's, and claimed nodes shared with the user (never pending ones: a
-- pending node's claim code is read only by the node itself, defect 2).
create policy wowlab_nodes_select on public.nodes for select to authenticated
  using (
    user_id = (select wowlab.current_user_id())
    or (
      user_id is not null and flagged_at is null
      and wowlab.may_use((select wowlab.current_user_id()), id, user_id, true)
    )
  );
create policy wowlab_nodes_update on public.nodes for update to authenticated
  using (user_id = (select wowlab.current_user_id()))
  with check (user_id = (select wowlab.current_user_id()) and max_parallel between 1 and 256);
create policy wowlab_nodes_delete on public.nodes for delete to authenticated
  using (user_id = (select wowlab.current_user_id()));

-- node_access: the node's owner only.
create policy wowlab_node_access_select on public.node_access for select to authenticated
  using (wowlab.owns_node(node_id, (select wowlab.current_user_id())));
create policy wowlab_node_access_insert on public.node_access for insert to authenticated
  with check (wowlab.owns_node(node_id, (select wowlab.current_user_id())));
create policy wowlab_node_access_delete on public.node_access for delete to authenticated
  using (wowlab.owns_node(node_id, (select wowlab.current_user_id())));

-- sim_configs: configs of your own jobs.
create policy wowlab_sim_configs_select on public.sim_configs for select to authenticated
  using (wowlab.owns_config(hash, (select wowlab.current_user_id())));

-- sim_jobs: your own (submitting and cancelling go through the portal or cancel_job).
create policy wowlab_sim_jobs_select on public.sim_jobs for select to authenticated
  using (user_id = (select wowlab.current_user_id()));
create policy wowlab_sim_jobs_delete on public.sim_jobs for delete to authenticated
  using (user_id = (select wowlab.current_user_id()));

-- sim_chunks: chunks of your own jobs.
create policy wowlab_sim_chunks_select on public.sim_chunks for select to authenticated
  using (wowlab.owns_job(job_id, (select wowlab.current_user_id())));

-- notices: your own.
create policy wowlab_notices_select on public.notices for select to authenticated
  using (user_id = (select wowlab.current_user_id()));
create policy wowlab_notices_update on public.notices for update to authenticated
  using (user_id = (select wowlab.current_user_id()))
  with check (user_id = (select wowlab.current_user_id()));
create policy wowlab_notices_delete on public.notices for delete to authenticated
  using (user_id = (select wowlab.current_user_id()));

-- api_tokens, web_sessions, login_failures, chunk_leases, alembic_version: no policy,
-- so no row for anon or authenticated (the portal and the node functions use them).
