-- Generated from the Alembic revision 0001 of wowlab_core by
-- `python -m wowlab_transport_supabase.schema`. Do not edit: change the Alembic
-- revision (wowlab_core/migrations/versions) and generate again.

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL, 
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 0001

CREATE TABLE sim_configs (
    hash VARCHAR(64) NOT NULL, 
    config JSONB NOT NULL, 
    engine VARCHAR(64) NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    last_used_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (hash)
);

CREATE TABLE users (
    id SERIAL NOT NULL, 
    username VARCHAR(64) NOT NULL, 
    email VARCHAR(254), 
    password_hash VARCHAR(255), 
    is_admin BOOLEAN NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    UNIQUE (username)
);

CREATE TABLE friendships (
    id SERIAL NOT NULL, 
    requester_id INTEGER NOT NULL, 
    addressee_id INTEGER NOT NULL, 
    status VARCHAR(16) NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    CONSTRAINT ck_friend_status_valid CHECK (status in ('pending', 'accepted')), 
    CONSTRAINT ck_not_self CHECK (requester_id <> addressee_id), 
    FOREIGN KEY(addressee_id) REFERENCES users (id) ON DELETE CASCADE, 
    FOREIGN KEY(requester_id) REFERENCES users (id) ON DELETE CASCADE, 
    CONSTRAINT uq_friendship_pair UNIQUE (requester_id, addressee_id)
);

CREATE INDEX ix_friendships_addressee_id ON friendships (addressee_id);

CREATE INDEX ix_friendships_requester_id ON friendships (requester_id);

CREATE TABLE guilds (
    id SERIAL NOT NULL, 
    name VARCHAR(100) NOT NULL, 
    owner_id INTEGER, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    FOREIGN KEY(owner_id) REFERENCES users (id) ON DELETE SET NULL, 
    UNIQUE (name)
);

CREATE TABLE nodes (
    id SERIAL NOT NULL, 
    user_id INTEGER, 
    name VARCHAR(100) NOT NULL, 
    claim_code VARCHAR(6), 
    claim_expires_at TIMESTAMP WITH TIME ZONE, 
    token_hash VARCHAR(64) NOT NULL, 
    max_parallel INTEGER NOT NULL, 
    cores INTEGER, 
    status VARCHAR(16) NOT NULL, 
    last_seen_at TIMESTAMP WITH TIME ZONE, 
    version VARCHAR(64), 
    platform VARCHAR(128), 
    iterations_per_second FLOAT, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    claimed_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (id), 
    CONSTRAINT ck_status_valid CHECK (status in ('pending', 'online', 'offline')), 
    FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE, 
    UNIQUE (claim_code), 
    UNIQUE (token_hash)
);

CREATE INDEX ix_nodes_user_id ON nodes (user_id);

CREATE TABLE sim_jobs (
    id SERIAL NOT NULL, 
    user_id INTEGER NOT NULL, 
    config_hash VARCHAR(64) NOT NULL, 
    engine VARCHAR(64) NOT NULL, 
    total_iterations INTEGER NOT NULL, 
    completed_iterations INTEGER NOT NULL, 
    seed BIGINT NOT NULL, 
    status VARCHAR(16) NOT NULL, 
    status_reason VARCHAR(500), 
    target_error FLOAT, 
    max_iterations INTEGER, 
    max_attempts INTEGER NOT NULL, 
    own_nodes_only BOOLEAN NOT NULL, 
    result JSONB, 
    error VARCHAR(2000), 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    started_at TIMESTAMP WITH TIME ZONE, 
    finished_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (id), 
    CONSTRAINT ck_status_valid CHECK (status in ('pending', 'running', 'completed', 'failed', 'cancelled')), 
    CONSTRAINT ck_total_iterations_positive CHECK (total_iterations > 0), 
    FOREIGN KEY(config_hash) REFERENCES sim_configs (hash), 
    FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX ix_sim_jobs_status ON sim_jobs (status);

CREATE INDEX ix_sim_jobs_user_status ON sim_jobs (user_id, status);

CREATE TABLE guild_members (
    guild_id INTEGER NOT NULL, 
    user_id INTEGER NOT NULL, 
    role VARCHAR(16) NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (guild_id, user_id), 
    CONSTRAINT ck_role_valid CHECK (role in ('owner', 'member')), 
    FOREIGN KEY(guild_id) REFERENCES guilds (id) ON DELETE CASCADE, 
    FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX ix_guild_members_user_id ON guild_members (user_id);

CREATE TABLE node_access (
    id SERIAL NOT NULL, 
    node_id INTEGER NOT NULL, 
    access_type VARCHAR(16) NOT NULL, 
    target_id INTEGER, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    CONSTRAINT ck_access_type_valid CHECK (access_type in ('owner', 'user', 'friends', 'guild', 'public')), 
    FOREIGN KEY(node_id) REFERENCES nodes (id) ON DELETE CASCADE, 
    CONSTRAINT uq_node_access_grant UNIQUE (node_id, access_type, target_id)
);

CREATE INDEX ix_node_access_node_id ON node_access (node_id);

CREATE INDEX ix_node_access_target ON node_access (access_type, target_id);

CREATE TABLE sim_chunks (
    id SERIAL NOT NULL, 
    job_id INTEGER NOT NULL, 
    node_id INTEGER, 
    config_hash VARCHAR(64) NOT NULL, 
    iterations INTEGER NOT NULL, 
    seed_offset BIGINT NOT NULL, 
    status VARCHAR(16) NOT NULL, 
    attempts INTEGER NOT NULL, 
    failures INTEGER NOT NULL, 
    expirations INTEGER NOT NULL, 
    lease_token_hash VARCHAR(64), 
    lease_expires_at TIMESTAMP WITH TIME ZONE, 
    result JSONB, 
    error VARCHAR(2000), 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    leased_at TIMESTAMP WITH TIME ZONE, 
    completed_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (id), 
    CONSTRAINT ck_status_valid CHECK (status in ('pending', 'leased', 'completed', 'failed', 'cancelled')), 
    FOREIGN KEY(config_hash) REFERENCES sim_configs (hash), 
    FOREIGN KEY(job_id) REFERENCES sim_jobs (id) ON DELETE CASCADE, 
    FOREIGN KEY(node_id) REFERENCES nodes (id) ON DELETE SET NULL, 
    CONSTRAINT uq_chunk_job_offset UNIQUE (job_id, seed_offset)
);

CREATE INDEX ix_sim_chunks_leased ON sim_chunks (lease_expires_at) WHERE status = 'leased';

CREATE INDEX ix_sim_chunks_node ON sim_chunks (node_id);

CREATE INDEX ix_sim_chunks_pending ON sim_chunks (job_id, seed_offset) WHERE status = 'pending';

CREATE TABLE chunk_leases (
    id SERIAL NOT NULL, 
    chunk_id INTEGER NOT NULL, 
    node_id INTEGER, 
    token_hash VARCHAR(64) NOT NULL, 
    leased_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    FOREIGN KEY(chunk_id) REFERENCES sim_chunks (id) ON DELETE CASCADE, 
    FOREIGN KEY(node_id) REFERENCES nodes (id) ON DELETE SET NULL
);

CREATE INDEX ix_chunk_leases_chunk_token ON chunk_leases (chunk_id, token_hash);

CREATE INDEX ix_chunk_leases_node_id ON chunk_leases (node_id);

INSERT INTO alembic_version (version_num) VALUES ('0001') RETURNING alembic_version.version_num;
