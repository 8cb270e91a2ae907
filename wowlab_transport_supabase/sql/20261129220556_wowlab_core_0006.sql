-- Generated from the Alembic revision 0006 of wowlab_core by
-- `python -m wowlab_transport_supabase.schema`. Do not edit: change the Alembic
-- revision (wowlab_core/migrations/versions) and generate again.

-- Running upgrade 0005 -> 0006

CREATE TABLE rate_limit_hits (
    id SERIAL NOT NULL, 
    key VARCHAR(200) NOT NULL, 
    at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id)
);

CREATE INDEX ix_rate_limit_hits_key_at ON rate_limit_hits (key, at);

CREATE TABLE request_keys (
    key VARCHAR(64) NOT NULL, 
    reply BYTEA, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (key)
);

CREATE INDEX ix_request_keys_created_at ON request_keys (created_at);

UPDATE alembic_version SET version_num='0006' WHERE alembic_version.version_num = '0005';
