-- tally:always (runs on every migrate, so a fresh install and an old one both have partitions ahead)
SELECT tally.create_partitions();
