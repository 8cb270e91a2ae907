-- Generated from the Alembic revision 0004 of wowlab_core by
-- `python -m wowlab_transport_supabase.schema`. Do not edit: change the Alembic
-- revision (wowlab_core/migrations/versions) and generate again.

-- Running upgrade 0003 -> 0004

CREATE TABLE login_failures (
    username VARCHAR(64) NOT NULL, 
    address VARCHAR(64) NOT NULL, 
    failures INTEGER NOT NULL, 
    last_failed_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    blocked_until TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (username, address)
);

CREATE TABLE web_sessions (
    id_hash VARCHAR(64) NOT NULL, 
    user_id INTEGER NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    last_seen_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id_hash), 
    FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX ix_web_sessions_user_id ON web_sessions (user_id);

ALTER TABLE api_tokens ADD COLUMN expires_at TIMESTAMP WITH TIME ZONE;

UPDATE alembic_version SET version_num='0004' WHERE alembic_version.version_num = '0003';
