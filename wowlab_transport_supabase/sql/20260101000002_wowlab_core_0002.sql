-- Generated from the Alembic revision 0002 of wowlab_core by
-- `python -m wowlab_transport_supabase.schema`. Do not edit: change the Alembic
-- revision (wowlab_core/migrations/versions) and generate again.

-- Running upgrade 0001 -> 0002

CREATE TABLE api_tokens (
    id SERIAL NOT NULL, 
    user_id INTEGER NOT NULL, 
    name VARCHAR(100) NOT NULL, 
    prefix VARCHAR(16) NOT NULL, 
    token_hash VARCHAR(64) NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    last_used_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (id), 
    FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE, 
    UNIQUE (token_hash)
);

CREATE INDEX ix_api_tokens_user_id ON api_tokens (user_id);

CREATE TABLE guild_invites (
    guild_id INTEGER NOT NULL, 
    user_id INTEGER NOT NULL, 
    invited_by INTEGER, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (guild_id, user_id), 
    FOREIGN KEY(guild_id) REFERENCES guilds (id) ON DELETE CASCADE, 
    FOREIGN KEY(invited_by) REFERENCES users (id) ON DELETE SET NULL, 
    FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX ix_guild_invites_user_id ON guild_invites (user_id);

UPDATE alembic_version SET version_num='0002' WHERE alembic_version.version_num = '0001';
