-- Row level security on the tables of the scale-out revision (0006): the portal's shared
-- rate-limit counters and the bridges' request keys. Nobody but the service role (the
-- portal, the bridge) reads or writes them: deny by default, as on every other table.

do $$
declare
  t text;
begin
  foreach t in array array['rate_limit_hits', 'request_keys'] loop
    execute format('alter table public.%I enable row level security', t);
    execute format('revoke all on public.%I from anon, authenticated', t);
    execute format('grant all on public.%I to service_role', t);
  end loop;
end $$;
revoke all on sequence public.rate_limit_hits_id_seq from anon, authenticated;
