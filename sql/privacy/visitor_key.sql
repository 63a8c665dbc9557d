CREATE OR REPLACE FUNCTION tally.visitor_key(inner_pad bytea, outer_pad bytea, identity text)
RETURNS uuid
LANGUAGE sql
-- STABLE, not IMMUTABLE: textsend() is stable, and a body more volatile than its declaration is never
-- inlined (declared IMMUTABLE, every log_event call paid a separate SQL function call).
STABLE
STRICT
PARALLEL SAFE
-- No SET clause: a SQL function with one is never inlined, and log_event computes this per call.
-- Only built-in operators and functions, schema-qualified.
AS $$
    -- HMAC-SHA256 (RFC 2104) with the key given as its two pads: H(key ^ opad || H(key ^ ipad || m)).
    -- textsend() is the text's bytes in the database encoding. The first 16 bytes make the uuid.
    SELECT pg_catalog.encode(
        pg_catalog.substr(
            pg_catalog.sha256(outer_pad OPERATOR(pg_catalog.||) pg_catalog.sha256(
                inner_pad OPERATOR(pg_catalog.||) pg_catalog.textsend(identity)
            )),
            1, 16
        ),
        'hex'
    )::uuid
$$;

COMMENT ON FUNCTION tally.visitor_key(bytea, bytea, text) IS
'HMAC-SHA256 of identity under the key whose pads are given (see tally.visitor_salts), first 16 bytes as a uuid.';
