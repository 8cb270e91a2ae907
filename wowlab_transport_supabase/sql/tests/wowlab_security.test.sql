-- pgTAP checks of wowlab's security on a Supabase database: run them on your own project
-- after `wowlab supabase apply` (copy to supabase/tests/ and run `supabase test db`, or
-- `psql "$DB_URL" -f wowlab_security.test.sql`). Everything happens in one transaction
-- that is rolled back.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(16);

-- RLS on every table, in public and in the private schema.
select is_empty(
  $$ select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname in ('public', 'wowlab') and c.relkind = 'r' and not c.relrowsecurity $$,
  'row level security is on for every table'
);

-- SECURITY DEFINER functions pin an empty search_path.
select is_empty(
  $$ select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname in ('public', 'wowlab') and p.prosecdef
       and not coalesce('search_path=""' = any(p.proconfig), false) $$,
  'every SECURITY DEFINER function sets search_path to empty'
);

-- EXECUTE only for the roles that need it.
select ok(has_function_privilege('anon', 'public.node_lease(bigint, text, integer)', 'execute'),
  'nodes (anon) may lease');
select ok(not has_function_privilege('authenticated', 'public.node_lease(bigint, text, integer)', 'execute'),
  'signed-in users may not call node functions');
select ok(not has_function_privilege('anon', 'public.claim_node(text, text)', 'execute'),
  'anon may not claim nodes');
select ok(has_function_privilege('authenticated', 'public.claim_node(text, text)', 'execute'),
  'signed-in users may claim nodes');
select ok(not has_function_privilege('anon', 'wowlab.reap_now()', 'execute'),
  'anon may not run the reaper');

-- A world: a user with a node and a job, and a stranger.
insert into auth.users (id, email) values
  ('11111111-1111-1111-1111-111111111111', 'pgtap-owner@example.org'),
  ('22222222-2222-2222-2222-222222222222', 'pgtap-stranger@example.org');
insert into public.nodes (user_id, name, token_hash, max_parallel, status, trust_score, created_at)
select a.user_id, 'pgtap-node', encode(extensions.digest('pgtap-token', 'sha256'), 'hex'), 1,
  'online', 0, now()
from wowlab.auth_users a where a.auth_id = '11111111-1111-1111-1111-111111111111';

-- anon sees no row of any data table.
set local role anon;
select set_config('request.jwt.claims', '{"role": "anon"}', true);
select throws_ok($$ select count(*) from public.nodes $$, '42501', null,
  'anon may not read nodes at all');
select throws_ok($$ select count(*) from public.users $$, '42501', null,
  'anon may not read users at all');
select throws_ok(
  $$ select public.node_lease((select 1), 'not-the-token', 1) $$, 'PGRST', null,
  'a wrong node token is refused');
reset role;

-- The owner sees their node; the stranger does not, and cannot change it.
set local role authenticated;
select set_config('request.jwt.claims',
  '{"role": "authenticated", "sub": "11111111-1111-1111-1111-111111111111"}', true);
select is((select count(*)::int from public.nodes where name = 'pgtap-node'), 1,
  'the owner sees their node');
select throws_ok($$ select token_hash from public.nodes $$, '42501', null,
  'not even the owner reads a token hash');
select throws_ok($$ update public.nodes set trust_score = 1000 $$, '42501', null,
  'an owner cannot raise their node''s trust score');
select set_config('request.jwt.claims',
  '{"role": "authenticated", "sub": "22222222-2222-2222-2222-222222222222"}', true);
select is((select count(*)::int from public.nodes where name = 'pgtap-node'), 0,
  'a stranger does not see the node');
select is_empty($$ update public.nodes set name = 'taken' where name = 'pgtap-node' returning id $$,
  'a stranger cannot rename the node');
select is_empty($$ delete from public.nodes where name = 'pgtap-node' returning id $$,
  'a stranger cannot delete the node');
reset role;

select * from finish();
rollback;
