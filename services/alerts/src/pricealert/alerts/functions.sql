-- The alerts service's Postgres functions, each defined once: migrations apply them by name with
-- CREATE OR REPLACE (pricealert.alerts.sqlfunctions). Each starts at a "-- function: <name>" line.

-- function: alerts_create
-- Creates an alert and stages its alert-events entry in one call, unless the user holds p_limit active
-- alerts (then returns their count). The per-user lock orders a user's creates; each statement of a
-- VOLATILE function takes a fresh snapshot (READ COMMITTED), so the count that follows the lock sees every
-- alert committed by the previous holder: the limit stays exact. The count comes from the status counts
-- once migration 0003 made them, from the rows before (and after a downgrade past it). The definition's
-- fields beyond a target price (0006) default to those of a v1 alert: a level, once, no message; its channels
-- (0007, comma-separated ids) to the account's email (NULL).
CREATE OR REPLACE FUNCTION alerts_create(
    p_lock text, p_limit integer, p_id varchar, p_user_id varchar, p_email varchar, p_symbol varchar,
    p_condition varchar, p_target_price varchar, p_name varchar, p_now timestamptz, p_expires_at timestamptz,
    p_stream varchar, p_fields text, p_low varchar DEFAULT NULL, p_high varchar DEFAULT NULL,
    p_percent varchar DEFAULT NULL, p_window varchar DEFAULT NULL, p_frequency varchar DEFAULT 'once',
    p_cooldown_s integer DEFAULT NULL, p_message text DEFAULT NULL, p_channel_ids text DEFAULT NULL
) RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_active integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(p_lock));
    IF to_regclass('alerts_status_counts') IS NULL THEN
        SELECT count(*) INTO v_active FROM alerts WHERE user_id = p_user_id AND status = 'active';
    ELSE
        SELECT n INTO v_active FROM alerts_status_counts WHERE user_id = p_user_id AND status = 'active';
    END IF;
    IF v_active >= p_limit THEN
        RETURN v_active;
    END IF;
    INSERT INTO alerts (id, user_id, email, symbol, condition, target_price, name, status, created_at,
                        updated_at, expires_at, low, high, percent, "window", frequency, cooldown_s, message,
                        channel_ids)
    VALUES (p_id, p_user_id, p_email, p_symbol, p_condition, p_target_price, p_name, 'active', p_now, p_now,
            p_expires_at, p_low, p_high, p_percent, p_window, p_frequency, p_cooldown_s, p_message, p_channel_ids);
    INSERT INTO alerts_outbox (stream, fields, created_at) VALUES (p_stream, p_fields, p_now);
    RETURN NULL;
END
$$;

-- function: alerts_outbox_take
-- Deletes and returns the oldest outbox rows for the relay. The relay lock is taken before the DELETE's
-- snapshot, so a relay never takes rows behind another's back. While another relay holds it, the answer
-- is one row of NULLs (no rows means an empty outbox).
CREATE OR REPLACE FUNCTION alerts_outbox_take(p_lock bigint, p_limit integer)
RETURNS TABLE (id bigint, stream varchar, fields text) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(p_lock) THEN
        RETURN QUERY SELECT NULL::bigint, NULL::varchar, NULL::text;
        RETURN;
    END IF;
    RETURN QUERY
        DELETE FROM alerts_outbox AS o
        WHERE o.id IN (SELECT i.id FROM alerts_outbox AS i ORDER BY i.id LIMIT p_limit FOR UPDATE SKIP LOCKED)
        RETURNING o.id, o.stream, o.fields;
END
$$;

-- function: alerts_count_status
-- Row trigger: keeps alerts_status_counts in step with each inserted (and, before 0004, changed) alert.
CREATE OR REPLACE FUNCTION alerts_count_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE alerts_status_counts SET n = n - 1 WHERE user_id = OLD.user_id AND status = OLD.status;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO alerts_status_counts AS c (user_id, status, n) VALUES (NEW.user_id, NEW.status, 1)
        ON CONFLICT (user_id, status) DO UPDATE SET n = c.n + 1;
    END IF;
    RETURN NULL;
END
$$;

-- function: alerts_count_statement
-- Statement trigger (0004): an UPDATE, DELETE or TRUNCATE of alerts changes the counts once, at its end,
-- in (user, status) order under the C collation (the order of Python's sorted()).
CREATE OR REPLACE FUNCTION alerts_count_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO alerts_status_counts AS c (user_id, status, n)
        SELECT user_id, status, sum(d)::integer FROM (
            SELECT user_id, status, -1 AS d FROM old_rows
            UNION ALL
            SELECT user_id, status, 1 AS d FROM new_rows
        ) AS changes
        GROUP BY user_id, status HAVING sum(d) <> 0 ORDER BY user_id COLLATE "C", status COLLATE "C"
        ON CONFLICT (user_id, status) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'TRUNCATE' THEN
        DELETE FROM alerts_status_counts;
    ELSE
        INSERT INTO alerts_status_counts AS c (user_id, status, n)
        SELECT user_id, status, -count(*)::integer FROM old_rows GROUP BY user_id, status
        ORDER BY user_id COLLATE "C", status COLLATE "C"
        ON CONFLICT (user_id, status) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$;
