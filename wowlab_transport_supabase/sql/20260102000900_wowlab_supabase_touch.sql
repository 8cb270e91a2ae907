-- touch: check a node's token and mark it alive, leaving its leases alone (what the
-- coordinator's touch does); a node calls it before it waits for work, so a node with a
-- wrong token learns it at once instead of waiting in vain.
create or replace function public.node_touch(p_node_id bigint, p_token text) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_node public.nodes := wowlab.authenticate(p_node_id, p_token);
begin
  v_node := wowlab.mark_seen(v_node.id);
  return jsonb_build_object('status', v_node.status);
end;
$$;
revoke all on function public.node_touch(bigint, text) from public, anon, authenticated;
grant execute on function public.node_touch(bigint, text) to anon, service_role;
