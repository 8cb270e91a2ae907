-- Generated from the Alembic revision 0008 of wowlab_core by
-- `python -m wowlab_transport_supabase.schema`. Do not edit: change the Alembic
-- revision (wowlab_core/migrations/versions) and generate again.

-- Running upgrade 0007 -> 0008

CREATE INDEX ix_sim_chunks_held ON sim_chunks (node_id) WHERE lease_token_hash IS NOT NULL;

UPDATE alembic_version SET version_num='0008' WHERE alembic_version.version_num = '0007';
