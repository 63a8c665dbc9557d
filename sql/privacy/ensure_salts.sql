-- tally:always (runs on every migrate, so a fresh install has visitor salts before its first call)
SELECT tally.prepare_salts();
