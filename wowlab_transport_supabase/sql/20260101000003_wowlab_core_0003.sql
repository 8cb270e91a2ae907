-- Generated from the Alembic revision 0003 of wowlab_core by
-- `python -m wowlab_transport_supabase.schema`. Do not edit: change the Alembic
-- revision (wowlab_core/migrations/versions) and generate again.

-- Running upgrade 0002 -> 0003

CREATE TABLE notices (
    id SERIAL NOT NULL, 
    user_id INTEGER NOT NULL, 
    kind VARCHAR(32) NOT NULL, 
    message VARCHAR(1000) NOT NULL, 
    job_id INTEGER, 
    node_id INTEGER, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    read_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (id), 
    FOREIGN KEY(job_id) REFERENCES sim_jobs (id) ON DELETE SET NULL, 
    FOREIGN KEY(node_id) REFERENCES nodes (id) ON DELETE SET NULL, 
    FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX ix_notices_user_id ON notices (user_id);

ALTER TABLE chunk_leases ADD COLUMN outcome VARCHAR(16);

ALTER TABLE nodes ADD COLUMN engines JSONB;

ALTER TABLE nodes ADD COLUMN labels JSONB;

ALTER TABLE nodes ADD COLUMN trust_score INTEGER DEFAULT '0' NOT NULL;

ALTER TABLE nodes ADD COLUMN flagged_at TIMESTAMP WITH TIME ZONE;

ALTER TABLE nodes ADD COLUMN flag_reason VARCHAR(500);

ALTER TABLE sim_chunks ADD COLUMN lease_deadline_at TIMESTAMP WITH TIME ZONE;

ALTER TABLE sim_chunks ADD COLUMN progress INTEGER DEFAULT '0' NOT NULL;

ALTER TABLE sim_chunks ADD COLUMN computed_by INTEGER;

ALTER TABLE sim_chunks ADD COLUMN verified_by INTEGER;

ALTER TABLE sim_chunks ADD COLUMN verify_state VARCHAR(16);

ALTER TABLE sim_chunks ADD COLUMN alt_result JSONB;

ALTER TABLE sim_chunks ADD COLUMN alt_node_id INTEGER;

CREATE INDEX ix_sim_chunks_computed_by ON sim_chunks (computed_by);

CREATE INDEX ix_sim_chunks_verify ON sim_chunks (job_id, seed_offset) WHERE status = 'verify';

ALTER TABLE sim_chunks ADD CONSTRAINT fk_sim_chunks_computed_by_nodes FOREIGN KEY(computed_by) REFERENCES nodes (id) ON DELETE SET NULL;

ALTER TABLE sim_chunks ADD CONSTRAINT fk_sim_chunks_verified_by_nodes FOREIGN KEY(verified_by) REFERENCES nodes (id) ON DELETE SET NULL;

ALTER TABLE sim_chunks ADD CONSTRAINT fk_sim_chunks_alt_node_id_nodes FOREIGN KEY(alt_node_id) REFERENCES nodes (id) ON DELETE SET NULL;

ALTER TABLE sim_chunks DROP CONSTRAINT ck_status_valid;

ALTER TABLE sim_chunks ADD CONSTRAINT ck_status_valid CHECK (status in ('pending', 'leased', 'verify', 'completed', 'failed', 'cancelled'));

UPDATE sim_chunks SET computed_by = node_id WHERE status = 'completed' AND node_id IS NOT NULL;

ALTER TABLE sim_jobs ADD COLUMN engine_version VARCHAR(64);

ALTER TABLE sim_jobs ADD COLUMN allow_public BOOLEAN DEFAULT false NOT NULL;

UPDATE alembic_version SET version_num='0003' WHERE alembic_version.version_num = '0002';
