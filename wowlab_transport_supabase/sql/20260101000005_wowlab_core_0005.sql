-- Generated from the Alembic revision 0005 of wowlab_core by
-- `python -m wowlab_transport_supabase.schema`. Do not edit: change the Alembic
-- revision (wowlab_core/migrations/versions) and generate again.

-- Running upgrade 0004 -> 0005

ALTER TABLE nodes ADD COLUMN events_per_second FLOAT;

ALTER TABLE sim_configs ADD COLUMN seconds_per_iteration FLOAT;

ALTER TABLE sim_configs ADD COLUMN events_per_iteration FLOAT;

ALTER TABLE sim_jobs ADD COLUMN seconds_per_iteration FLOAT;

ALTER TABLE sim_jobs ADD COLUMN events_per_iteration FLOAT;

UPDATE alembic_version SET version_num='0005' WHERE alembic_version.version_num = '0004';
