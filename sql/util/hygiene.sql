-- Input hygiene for log_event: bounded, control-character-free text and a forgiving IP parser.

-- No SET search_path here, on purpose: a SQL function with a SET clause cannot be inlined and is then
-- planned on every call (tens of microseconds on the ingestion path). The body names only pg_catalog
-- functions, schema-qualified, so it means the same under any search_path.
CREATE OR REPLACE FUNCTION tally.clean_text(value text, max_chars integer)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    -- [[:cntrl:]] covers C0 controls and DEL; NUL cannot reach a text value at all (see README).
    SELECT nullif(
        pg_catalog.left(pg_catalog.regexp_replace(value, '[[:cntrl:]]+', '', 'g'), max_chars), ''
    )
$$;

COMMENT ON FUNCTION tally.clean_text(text, integer) IS
'Removes control characters and cuts to max_chars characters; empty becomes NULL.';

CREATE OR REPLACE FUNCTION tally.parse_ip(value text)
RETURNS inet
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- An address is 45 characters at most (IPv4-mapped IPv6 with a netmask); longer is not one.
    IF value IS NULL OR length(value) > 64 THEN
        RETURN NULL;
    END IF;
    RETURN value::inet;
EXCEPTION WHEN invalid_text_representation THEN
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION tally.parse_ip(text) IS 'The text as inet, or NULL when it is not an IP address.';
