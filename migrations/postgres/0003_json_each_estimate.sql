-- json_each(text) unpacks lists of ids the store passes (a handful, rarely more). Without an
-- estimate the planner assumes 1,000 rows and may read the whole tasks table to join them;
-- with 10 it walks the indexes from the ids.
ALTER FUNCTION json_each(TEXT) ROWS 10;
