-- Generated from the Alembic revision 0007 of wowlab_core by
-- `python -m wowlab_transport_supabase.schema`. Do not edit: change the Alembic
-- revision (wowlab_core/migrations/versions) and generate again.

-- Running upgrade 0006 -> 0007

ALTER TABLE sim_jobs ADD COLUMN name VARCHAR(200);

ALTER TABLE sim_jobs ADD COLUMN fight_seconds FLOAT;

ALTER TABLE sim_jobs ADD COLUMN fight_variation FLOAT;

ALTER TABLE sim_jobs ADD COLUMN targets INTEGER;

ALTER TABLE sim_jobs ADD COLUMN share_token_hash VARCHAR(64);

ALTER TABLE sim_jobs ADD COLUMN shared_at TIMESTAMP WITH TIME ZONE;

CREATE UNIQUE INDEX ix_sim_jobs_share_token_hash ON sim_jobs (share_token_hash);

UPDATE alembic_version SET version_num='0007' WHERE alembic_version.version_num = '0006';
