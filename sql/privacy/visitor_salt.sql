CREATE OR REPLACE FUNCTION tally.visitor_salt(day date)
RETURNS tally.visitor_salts
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * The salt of a UTC day, created on first use: a 32-byte key from two gen_random_uuid() values
 * (pg_strong_random, 244 random bits), zero-padded to SHA-256's 64-byte block and stored as its
 * HMAC pads. Concurrent first calls of a day agree on one salt (ON CONFLICT, then read back).
 * Runs as its caller; only tally_owner's SECURITY DEFINER functions (log_event) may call it.
 */
#variable_conflict use_column
DECLARE
    v_key bytea;
    v_inner bytea;
    v_outer bytea;
    v_salt tally.visitor_salts;
BEGIN
    SELECT * INTO v_salt FROM tally.visitor_salts AS s WHERE s.day = visitor_salt.day;
    IF FOUND THEN
        RETURN v_salt;
    END IF;
    v_key := decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '') || repeat('00', 32), 'hex');
    v_inner := v_key;
    v_outer := v_key;
    FOR i IN 0..63 LOOP
        v_inner := set_byte(v_inner, i, get_byte(v_key, i) # 54);  -- 0x36
        v_outer := set_byte(v_outer, i, get_byte(v_key, i) # 92);  -- 0x5c
    END LOOP;
    INSERT INTO tally.visitor_salts AS s (day, inner_pad, outer_pad)
    VALUES (visitor_salt.day, v_inner, v_outer)
    ON CONFLICT (day) DO NOTHING;
    SELECT * INTO STRICT v_salt FROM tally.visitor_salts AS s WHERE s.day = visitor_salt.day;
    RETURN v_salt;
END
$$;

COMMENT ON FUNCTION tally.visitor_salt(date) IS
'The secret salt of a UTC day (tally.visitor_salts), created on first use.';
