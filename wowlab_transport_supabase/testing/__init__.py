"""Test kit of the Supabase transport: a Supabase-like bootstrap for a plain PostgreSQL,
JWTs signed with a test secret, and a gateway that answers RPC calls as PostgREST does."""
