CREATE OR REPLACE FUNCTION tally.rejection_prefix(key text)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    -- What a rate-limit rejection key keeps after the abuse window: an IPv4 /24 or IPv6 /48 network
    -- for an address key, 'user:*' for a user key; 'ip:unparsable' and prefixes stay as they are.
    SELECT CASE
        WHEN key LIKE 'user:%' THEN 'user:*'
        WHEN key !~ '^ip:[0-9a-fA-F:.]+(/[0-9]+)?$' THEN key
        ELSE 'ip:' || network(set_masklen(
            substr(key, 4)::inet,
            least(masklen(substr(key, 4)::inet), CASE family(substr(key, 4)::inet) WHEN 4 THEN 24 ELSE 48 END)
        ))::text
    END
$$;

COMMENT ON FUNCTION tally.rejection_prefix(text) IS
'The part of a rate-limit rejection key kept after settings.pii_retention (an address prefix, or user:*).';
