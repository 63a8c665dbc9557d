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

CREATE OR REPLACE FUNCTION tally.parse_address(value text)
RETURNS inet
LANGUAGE plpgsql
IMMUTABLE
STRICT
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * tally.parse_ip for anything but a plain dotted quad: the host address in value, or NULL when it is
 * not an IP address. Normalised so that one address has one form: a netmask suffix is dropped
 * ('1.2.3.4/31' is 1.2.3.4, not a new address per mask) and an IPv4-mapped IPv6 address
 * ('::ffff:198.51.100.7') is the IPv4 address.
 */
DECLARE
    v_ip inet;
BEGIN
    -- An address is 45 characters at most (IPv4-mapped IPv6 with a netmask); longer is not one.
    IF length(value) > 64 THEN
        RETURN NULL;
    END IF;
    v_ip := host(value::inet)::inet;
    IF family(v_ip) = 6 AND v_ip <<= inet '::ffff:0.0.0.0/96' THEN
        v_ip := inet '0.0.0.0' + (v_ip - inet '::ffff:0.0.0.0');
    END IF;
    RETURN v_ip;
EXCEPTION WHEN invalid_text_representation THEN
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION tally.parse_address(text) IS
'tally.parse_ip''s general case (IPv6, netmasks, garbage): the host address, or NULL when it is not one.';

-- Inlined SQL (no SET clause): the common case, a plain dotted quad, is a valid inet as it is, and
-- costs a regular expression; only other values pay for a function call with a subtransaction.
CREATE OR REPLACE FUNCTION tally.parse_ip(value text)
RETURNS inet
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN value ~ '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$'
            THEN value::inet
        ELSE tally.parse_address(value)
    END
$$;

COMMENT ON FUNCTION tally.parse_ip(text) IS
'The text as a host address (netmask dropped, IPv4-mapped IPv6 as IPv4), or NULL when it is not an IP address.';

-- Replaced by the address bucket computed inline in log_event (see there for why).
DROP FUNCTION IF EXISTS tally.ip_bucket(text, inet, integer);
