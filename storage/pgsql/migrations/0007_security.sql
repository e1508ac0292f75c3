-- 0005: security (issue 21).

-- Enrollment guards (mdm.EnrollmentGuard as JSON): the expiry of the
-- certificate bound at Authenticate, an admin's approval to re-bind the
-- enrollment, and its binding history.
CREATE TABLE enrollment_guards (
    id    text COLLATE "C" PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    guard jsonb NOT NULL
);

-- API key roles: 'read' or 'admin'; '' is a key made before roles, an admin.
ALTER TABLE api_keys ADD COLUMN role text NOT NULL DEFAULT '';
