-- Cleanup, scheduled with pg_cron when the database has it (Supabase does: enable it under
-- Database > Extensions), else a notice says how to run the same functions another way.
--   wowlab-reap                 every minute  expired leases back to the pool, silent nodes
--                                             offline, unchecked results that waited too long
--   wowlab-delete-stale-nodes   daily 03:00   nodes offline (or never claimed) for
--                                             stale_node_days (30); chunk history is kept
--   wowlab-delete-unused-configs daily 03:15  configs unused for unused_config_days (7)
--                                             that no job refers to

-- nodes.delete_stale_node_ids: returns how many were deleted.
create or replace function wowlab.delete_stale_nodes(p_days int default null) returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_days int := coalesce(p_days, (wowlab.settings()).stale_node_days);
  v_count int;
begin
  delete from public.nodes n
  where n.status in ('offline', 'pending')
    and n.last_seen_at < now() - make_interval(days => v_days);
  get diagnostics v_count = row_count;
  return v_count;
end;
$$;

create or replace function wowlab.delete_unused_configs(p_days int default null) returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_days int := coalesce(p_days, (wowlab.settings()).unused_config_days);
  v_count int;
begin
  delete from public.sim_configs g
  where g.last_used_at < now() - make_interval(days => v_days)
    and not exists (select 1 from public.sim_jobs j where j.config_hash = g.hash)
    and not exists (select 1 from public.sim_chunks c where c.config_hash = g.hash);
  get diagnostics v_count = row_count;
  return v_count;
end;
$$;

create or replace function wowlab.reap_now() returns int
language sql volatile security definer
set search_path = ''
as $$ select wowlab.reap() $$;

revoke all on function wowlab.delete_stale_nodes(int), wowlab.delete_unused_configs(int),
  wowlab.reap_now() from public, anon, authenticated;
grant execute on function wowlab.delete_stale_nodes(int), wowlab.delete_unused_configs(int),
  wowlab.reap_now() to service_role;

-- Schedule the jobs (again: `wowlab supabase apply` calls this on every run, so enabling
-- pg_cron later and applying again is enough). Returns what it did, in one line.
create or replace function wowlab.schedule_cleanup() returns text
language plpgsql volatile
set search_path = ''
as $$
begin
  if not exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    raise notice 'wowlab: pg_cron is not installed, so nothing is scheduled. Enable pg_cron '
      '(Supabase: Database > Extensions) and run `wowlab supabase apply` again, or call '
      'wowlab.reap_now() every minute and wowlab.delete_stale_nodes() and '
      'wowlab.delete_unused_configs() daily yourself (`wowlab supabase worker` reaps too).';
    return 'pg_cron missing: nothing scheduled';
  end if;
  perform cron.schedule('wowlab-reap', '* * * * *', 'select wowlab.reap_now()');
  perform cron.schedule('wowlab-delete-stale-nodes', '0 3 * * *',
    'select wowlab.delete_stale_nodes()');
  perform cron.schedule('wowlab-delete-unused-configs', '15 3 * * *',
    'select wowlab.delete_unused_configs()');
  return 'pg_cron: wowlab-reap, wowlab-delete-stale-nodes, wowlab-delete-unused-configs scheduled';
end;
$$;
revoke all on function wowlab.schedule_cleanup() from public, anon, authenticated;

select wowlab.schedule_cleanup();
