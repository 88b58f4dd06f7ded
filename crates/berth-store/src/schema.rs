//! Schema and migrations. Each entry of [`MIGRATIONS`] runs once, in order, inside a transaction.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE credentials (
    access_key_id TEXT PRIMARY KEY,
    secret_access_key TEXT NOT NULL,
    principal_arn TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE clusters (
    name TEXT PRIMARY KEY,
    arn TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE services (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    arn TEXT NOT NULL,
    cluster TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    express INTEGER NOT NULL,
    infrastructure_role_arn TEXT,
    target_revision TEXT NOT NULL,
    live_revision TEXT,
    desired_count INTEGER NOT NULL,
    endpoint_host TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE UNIQUE INDEX services_active_name ON services(cluster, name) WHERE status = 'ACTIVE';
CREATE INDEX services_arn ON services(arn);
CREATE TABLE revisions (
    arn TEXT PRIMARY KEY,
    service_id INTEGER NOT NULL REFERENCES services(id),
    task_definition_arn TEXT NOT NULL,
    config TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE task_definitions (
    arn TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    revision INTEGER NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    registered_at REAL NOT NULL,
    UNIQUE(family, revision)
);
CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    arn TEXT NOT NULL UNIQUE,
    cluster TEXT NOT NULL,
    service_id INTEGER REFERENCES services(id),
    revision_arn TEXT,
    task_definition_arn TEXT NOT NULL,
    started_by TEXT,
    desired_status TEXT NOT NULL,
    last_status TEXT NOT NULL,
    ip TEXT,
    port INTEGER NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    stopping_at REAL,
    stopped_at REAL,
    stop_code TEXT,
    stopped_reason TEXT,
    exit_code INTEGER,
    drain_version INTEGER
);
CREATE INDEX tasks_service ON tasks(service_id, desired_status);
CREATE TABLE certificates (
    host TEXT PRIMARY KEY,
    cert_pem TEXT NOT NULL,
    key_pem TEXT NOT NULL,
    not_after REAL NOT NULL
);
CREATE TABLE tags (
    resource_arn TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (resource_arn, key)
);
"#,
    r#"
CREATE TABLE service_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id INTEGER NOT NULL REFERENCES services(id),
    created_at REAL NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX service_events_by_service ON service_events(service_id, id);
"#,
    // Secrets Manager and SSM Parameter Store (secret values and SecureStrings are stored sealed).
    r#"
CREATE TABLE secrets (
    arn TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    kms_key_id TEXT,
    created_at REAL NOT NULL,
    last_changed_at REAL NOT NULL,
    last_accessed_at REAL,
    deleted_at REAL,
    deletion_date REAL
);
CREATE TABLE secret_versions (
    secret_arn TEXT NOT NULL REFERENCES secrets(arn),
    version_id TEXT NOT NULL,
    is_binary INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (secret_arn, version_id)
);
CREATE TABLE secret_stages (
    secret_arn TEXT NOT NULL REFERENCES secrets(arn),
    stage TEXT NOT NULL,
    version_id TEXT NOT NULL,
    PRIMARY KEY (secret_arn, stage),
    FOREIGN KEY (secret_arn, version_id) REFERENCES secret_versions(secret_arn, version_id)
);
CREATE TABLE parameters (
    name TEXT PRIMARY KEY,
    arn TEXT NOT NULL,
    kind TEXT NOT NULL,
    description TEXT,
    allowed_pattern TEXT,
    key_id TEXT,
    tier TEXT NOT NULL,
    data_type TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_modified_at REAL NOT NULL,
    last_modified_user TEXT NOT NULL
);
CREATE TABLE parameter_versions (
    name TEXT NOT NULL REFERENCES parameters(name),
    version INTEGER NOT NULL,
    kind TEXT NOT NULL,
    value BLOB NOT NULL,
    last_modified_at REAL NOT NULL,
    last_modified_user TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
"#,
    // IAM and STS (issue 4): users, roles, inline and customer managed policies with versions, attachments and
    // role sessions. User access keys live in `credentials` (principal_arn = the user's ARN).
    r#"
CREATE TABLE iam_users (
    name TEXT PRIMARY KEY COLLATE NOCASE,
    user_id TEXT NOT NULL UNIQUE,
    arn TEXT NOT NULL,
    path TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE iam_roles (
    name TEXT PRIMARY KEY COLLATE NOCASE,
    role_id TEXT NOT NULL UNIQUE,
    arn TEXT NOT NULL,
    path TEXT NOT NULL,
    trust_policy TEXT NOT NULL,
    description TEXT,
    max_session_duration INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE iam_inline_policies (
    owner_kind TEXT NOT NULL,
    owner_name TEXT NOT NULL COLLATE NOCASE,
    policy_name TEXT NOT NULL COLLATE NOCASE,
    document TEXT NOT NULL,
    PRIMARY KEY (owner_kind, owner_name, policy_name)
);
CREATE TABLE iam_policies (
    arn TEXT PRIMARY KEY,
    name TEXT NOT NULL COLLATE NOCASE UNIQUE,
    policy_id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    description TEXT,
    default_version TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE iam_policy_versions (
    policy_arn TEXT NOT NULL REFERENCES iam_policies(arn) ON DELETE CASCADE,
    version_id TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (policy_arn, version_id)
);
CREATE TABLE iam_attachments (
    owner_kind TEXT NOT NULL,
    owner_name TEXT NOT NULL COLLATE NOCASE,
    policy_arn TEXT NOT NULL,
    PRIMARY KEY (owner_kind, owner_name, policy_arn)
);
CREATE INDEX iam_attachments_by_policy ON iam_attachments(policy_arn);
CREATE TABLE sts_sessions (
    access_key_id TEXT PRIMARY KEY,
    secret_access_key TEXT NOT NULL,
    session_token TEXT NOT NULL,
    role_name TEXT NOT NULL,
    role_id TEXT NOT NULL,
    session_name TEXT NOT NULL,
    assumed_role_arn TEXT NOT NULL,
    expires_at REAL NOT NULL,
    created_at REAL NOT NULL
);
"#,
    // ELBv2 (issue 3): load balancers, listeners, rules and target groups behind Express services. Tags live in
    // `tags`; conditions, actions, health checks and attributes are JSON in the control plane's shapes.
    r#"
CREATE TABLE elbv2_load_balancers (
    arn TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    scheme TEXT NOT NULL,
    dns_name TEXT NOT NULL,
    attributes TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE elbv2_listeners (
    arn TEXT PRIMARY KEY,
    load_balancer_arn TEXT NOT NULL REFERENCES elbv2_load_balancers(arn) ON DELETE CASCADE,
    port INTEGER NOT NULL,
    protocol TEXT NOT NULL,
    default_actions TEXT NOT NULL,
    UNIQUE (load_balancer_arn, port)
);
CREATE TABLE elbv2_listener_certificates (
    listener_arn TEXT NOT NULL REFERENCES elbv2_listeners(arn) ON DELETE CASCADE,
    certificate_arn TEXT NOT NULL,
    host TEXT NOT NULL,
    is_default INTEGER NOT NULL,
    PRIMARY KEY (listener_arn, certificate_arn)
);
CREATE TABLE elbv2_rules (
    arn TEXT PRIMARY KEY,
    listener_arn TEXT NOT NULL REFERENCES elbv2_listeners(arn) ON DELETE CASCADE,
    priority INTEGER,
    conditions TEXT NOT NULL,
    actions TEXT NOT NULL,
    service_id INTEGER,
    UNIQUE (listener_arn, priority)
);
CREATE TABLE elbv2_target_groups (
    arn TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    service_id INTEGER,
    protocol TEXT NOT NULL,
    port INTEGER NOT NULL,
    health_check TEXT NOT NULL,
    attributes TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE elbv2_targets (
    target_group_arn TEXT NOT NULL REFERENCES elbv2_target_groups(arn) ON DELETE CASCADE,
    id TEXT NOT NULL,
    port INTEGER NOT NULL,
    PRIMARY KEY (target_group_arn, id, port)
);
CREATE TABLE elbv2_placements (
    service_id INTEGER PRIMARY KEY,
    load_balancer_arn TEXT NOT NULL REFERENCES elbv2_load_balancers(arn),
    group_a TEXT NOT NULL,
    group_b TEXT NOT NULL
);
CREATE TABLE elbv2_revision_groups (
    revision_arn TEXT PRIMARY KEY,
    target_group_arn TEXT NOT NULL
);
"#,
    // EC2: VPCs, subnets, security groups and their rules, tags on EC2 ids, and which groups a service uses.
    r#"
CREATE TABLE ec2_vpcs (
    id TEXT PRIMARY KEY,
    cidr TEXT NOT NULL,
    is_default INTEGER NOT NULL,
    network TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE ec2_subnets (
    id TEXT PRIMARY KEY,
    vpc_id TEXT NOT NULL REFERENCES ec2_vpcs(id),
    availability_zone TEXT NOT NULL,
    cidr TEXT NOT NULL,
    map_public_ip INTEGER NOT NULL,
    default_for_az INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE ec2_security_groups (
    id TEXT PRIMARY KEY,
    vpc_id TEXT NOT NULL REFERENCES ec2_vpcs(id),
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE(vpc_id, name)
);
CREATE TABLE ec2_security_group_rules (
    id TEXT PRIMARY KEY,
    group_id TEXT NOT NULL REFERENCES ec2_security_groups(id) ON DELETE CASCADE,
    egress INTEGER NOT NULL,
    protocol TEXT NOT NULL,
    from_port INTEGER NOT NULL,
    to_port INTEGER NOT NULL,
    cidr_ipv4 TEXT,
    cidr_ipv6 TEXT,
    referenced_group_id TEXT,
    description TEXT,
    seq INTEGER NOT NULL
);
CREATE INDEX ec2_rules_by_group ON ec2_security_group_rules(group_id, seq);
CREATE TABLE ec2_tags (
    resource_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (resource_id, key)
);
CREATE TABLE ec2_service_groups (
    service_id INTEGER NOT NULL REFERENCES services(id),
    group_id TEXT NOT NULL REFERENCES ec2_security_groups(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    PRIMARY KEY (service_id, group_id)
);
CREATE INDEX ec2_service_groups_by_group ON ec2_service_groups(group_id);
"#,
    // Task-role credentials (the ECS-style credentials endpoint).
    r#"
CREATE TABLE task_credentials (
    credential_id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    role_arn TEXT NOT NULL,
    token TEXT NOT NULL,
    access_key_id TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX task_credentials_by_task ON task_credentials(task_id);
"#,
    // Credentials at rest (issue 4): role sessions keep their secret key and token sealed by the control plane's
    // vault (`sealed`), task credentials keep only a SHA-256 of their token (`token_hash`). Rows written before
    // keep their plaintext in `legacy_*` until the control plane converts them at start (it cannot be done in
    // SQL) and clears those columns.
    r#"
CREATE TABLE sts_sessions_sealed (
    access_key_id TEXT PRIMARY KEY,
    sealed BLOB,
    legacy_secret TEXT,
    legacy_token TEXT,
    role_name TEXT NOT NULL,
    role_id TEXT NOT NULL,
    session_name TEXT NOT NULL,
    assumed_role_arn TEXT NOT NULL,
    expires_at REAL NOT NULL,
    created_at REAL NOT NULL
);
INSERT INTO sts_sessions_sealed(access_key_id, sealed, legacy_secret, legacy_token, role_name, role_id,
    session_name, assumed_role_arn, expires_at, created_at)
    SELECT access_key_id, NULL, secret_access_key, session_token, role_name, role_id, session_name,
        assumed_role_arn, expires_at, created_at FROM sts_sessions;
DROP TABLE sts_sessions;
ALTER TABLE sts_sessions_sealed RENAME TO sts_sessions;
CREATE TABLE task_credentials_hashed (
    credential_id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    role_arn TEXT NOT NULL,
    token_hash TEXT,
    legacy_token TEXT,
    access_key_id TEXT,
    created_at REAL NOT NULL
);
INSERT INTO task_credentials_hashed(credential_id, task_id, role_arn, token_hash, legacy_token, access_key_id,
    created_at)
    SELECT credential_id, task_id, role_arn, NULL, token, access_key_id, created_at FROM task_credentials;
DROP TABLE task_credentials;
ALTER TABLE task_credentials_hashed RENAME TO task_credentials;
CREATE INDEX task_credentials_by_task ON task_credentials(task_id);
"#,
    // Load balancer networking (lb): each load balancer's VPC and its own listening address.
    r#"
CREATE TABLE elbv2_lb_network (
    lb_arn TEXT PRIMARY KEY REFERENCES elbv2_load_balancers(arn) ON DELETE CASCADE,
    vpc_id TEXT NOT NULL,
    address TEXT
);
"#,
    // CloudWatch Logs (logs): log groups, streams and events; times in epoch milliseconds. Events are read per
    // stream by time and scanned per group by time (FilterLogEvents, retention).
    r#"
CREATE TABLE log_groups (
    name TEXT PRIMARY KEY,
    arn TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    retention_days INTEGER,
    kms_key_id TEXT,
    log_group_class TEXT NOT NULL,
    deletion_protection INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE log_streams (
    group_name TEXT NOT NULL REFERENCES log_groups(name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    first_event_ms INTEGER,
    last_event_ms INTEGER,
    last_ingestion_ms INTEGER,
    stored_bytes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (group_name, name)
);
CREATE TABLE log_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    group_name TEXT NOT NULL,
    stream TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    ingestion_ms INTEGER NOT NULL,
    message TEXT NOT NULL,
    FOREIGN KEY (group_name, stream) REFERENCES log_streams(group_name, name) ON DELETE CASCADE
);
CREATE INDEX log_events_by_stream ON log_events(group_name, stream, timestamp_ms, seq);
CREATE INDEX log_events_by_group ON log_events(group_name, timestamp_ms, seq);
"#,
    // logs-ship: where each task's output goes and how far it was shipped.
    r#"
CREATE TABLE log_shipping (
    task_id TEXT PRIMARY KEY,
    group_name TEXT NOT NULL,
    stream TEXT NOT NULL,
    role_arn TEXT NOT NULL,
    last_ns INTEGER,
    same_ns INTEGER NOT NULL DEFAULT 0,
    dropped INTEGER NOT NULL DEFAULT 0,
    drained INTEGER NOT NULL DEFAULT 0
);
"#,
    // Long-term access keys sealed at rest (sealkeys): the secret access key is sealed by the control plane's
    // vault (`sealed`); keys written before keep it in `legacy_secret` until the control plane seals it at start.
    r#"
CREATE TABLE credentials_sealed (
    access_key_id TEXT PRIMARY KEY,
    sealed BLOB,
    legacy_secret TEXT,
    principal_arn TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at REAL NOT NULL
);
INSERT INTO credentials_sealed(access_key_id, sealed, legacy_secret, principal_arn, user_id, created_at)
    SELECT access_key_id, NULL, secret_access_key, principal_arn, user_id, created_at FROM credentials;
DROP TABLE credentials;
ALTER TABLE credentials_sealed RENAME TO credentials;
"#,
    // Route generation (routes): a counter every write that can change the route table bumps in its own
    // transaction, by trigger, whatever code path writes; the control plane rebuilds the table only when it moved.
    // Tasks count only when a column the table reads changes (not `drain_version`, stop reasons or times); meta
    // only for the keys the table reads (network gateways, the stickiness key).
    r#"
CREATE TABLE route_generation (id INTEGER PRIMARY KEY CHECK (id = 0), n INTEGER NOT NULL);
INSERT INTO route_generation(id, n) VALUES (0, 0);
CREATE TRIGGER route_gen_services_insert AFTER INSERT ON services BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_services_update AFTER UPDATE ON services BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_services_delete AFTER DELETE ON services BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_certificates_insert AFTER INSERT ON certificates BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_certificates_update AFTER UPDATE ON certificates BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_certificates_delete AFTER DELETE ON certificates BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_load_balancers_insert AFTER INSERT ON elbv2_load_balancers BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_load_balancers_update AFTER UPDATE ON elbv2_load_balancers BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_load_balancers_delete AFTER DELETE ON elbv2_load_balancers BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_listeners_insert AFTER INSERT ON elbv2_listeners BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_listeners_update AFTER UPDATE ON elbv2_listeners BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_listeners_delete AFTER DELETE ON elbv2_listeners BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_listener_certificates_insert AFTER INSERT ON elbv2_listener_certificates BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_listener_certificates_update AFTER UPDATE ON elbv2_listener_certificates BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_listener_certificates_delete AFTER DELETE ON elbv2_listener_certificates BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_rules_insert AFTER INSERT ON elbv2_rules BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_rules_update AFTER UPDATE ON elbv2_rules BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_rules_delete AFTER DELETE ON elbv2_rules BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_target_groups_insert AFTER INSERT ON elbv2_target_groups BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_target_groups_update AFTER UPDATE ON elbv2_target_groups BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_target_groups_delete AFTER DELETE ON elbv2_target_groups BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_targets_insert AFTER INSERT ON elbv2_targets BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_targets_update AFTER UPDATE ON elbv2_targets BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_targets_delete AFTER DELETE ON elbv2_targets BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_placements_insert AFTER INSERT ON elbv2_placements BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_placements_update AFTER UPDATE ON elbv2_placements BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_placements_delete AFTER DELETE ON elbv2_placements BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_revision_groups_insert AFTER INSERT ON elbv2_revision_groups BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_revision_groups_update AFTER UPDATE ON elbv2_revision_groups BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_revision_groups_delete AFTER DELETE ON elbv2_revision_groups BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_lb_network_insert AFTER INSERT ON elbv2_lb_network BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_lb_network_update AFTER UPDATE ON elbv2_lb_network BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_elbv2_lb_network_delete AFTER DELETE ON elbv2_lb_network BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_ec2_vpcs_insert AFTER INSERT ON ec2_vpcs BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_ec2_vpcs_update AFTER UPDATE ON ec2_vpcs BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_ec2_vpcs_delete AFTER DELETE ON ec2_vpcs BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_ec2_security_groups_insert AFTER INSERT ON ec2_security_groups BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_ec2_security_groups_update AFTER UPDATE ON ec2_security_groups BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_ec2_security_groups_delete AFTER DELETE ON ec2_security_groups BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_ec2_security_group_rules_insert AFTER INSERT ON ec2_security_group_rules BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_ec2_security_group_rules_update AFTER UPDATE ON ec2_security_group_rules BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_ec2_security_group_rules_delete AFTER DELETE ON ec2_security_group_rules BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_ec2_service_groups_insert AFTER INSERT ON ec2_service_groups BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_ec2_service_groups_update AFTER UPDATE ON ec2_service_groups BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_ec2_service_groups_delete AFTER DELETE ON ec2_service_groups BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_tasks_insert AFTER INSERT ON tasks BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_tasks_delete AFTER DELETE ON tasks BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_tasks_update AFTER UPDATE ON tasks
    WHEN OLD.arn IS NOT NEW.arn OR OLD.service_id IS NOT NEW.service_id OR OLD.revision_arn IS NOT NEW.revision_arn
        OR OLD.desired_status IS NOT NEW.desired_status OR OLD.last_status IS NOT NEW.last_status
        OR OLD.ip IS NOT NEW.ip OR OLD.port IS NOT NEW.port
    BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_meta_insert AFTER INSERT ON meta
    WHEN NEW.key = 'stickiness_key' OR NEW.key LIKE 'network_gateway:%' BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_meta_update AFTER UPDATE ON meta
    WHEN NEW.key = 'stickiness_key' OR NEW.key LIKE 'network_gateway:%' BEGIN UPDATE route_generation SET n = n + 1; END;
CREATE TRIGGER route_gen_meta_delete AFTER DELETE ON meta
    WHEN OLD.key = 'stickiness_key' OR OLD.key LIKE 'network_gateway:%' BEGIN UPDATE route_generation SET n = n + 1; END;
"#,
    // CloudWatch metrics (metrics): series by identity, their aggregates by (series, tier, bucket start) as
    // berth-telemetry encodes them, the sequence number of the control plane's newest written batch, and
    // dashboards.
    r#"
CREATE TABLE metric_series (
    id INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    dimensions TEXT NOT NULL,
    unit TEXT NOT NULL,
    storage_resolution INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    UNIQUE (namespace, name, dimensions, unit)
);
CREATE TABLE metric_data (
    series INTEGER NOT NULL,
    tier INTEGER NOT NULL,
    start INTEGER NOT NULL,
    aggregate BLOB NOT NULL,
    PRIMARY KEY (series, tier, start)
) WITHOUT ROWID;
CREATE TABLE metric_flush (id INTEGER PRIMARY KEY CHECK (id = 0), seq INTEGER NOT NULL);
INSERT INTO metric_flush(id, seq) VALUES (0, 0);
CREATE TABLE cw_dashboards (
    name TEXT PRIMARY KEY,
    arn TEXT NOT NULL,
    body TEXT NOT NULL,
    last_modified REAL NOT NULL
);
"#,
    // CloudWatch alarms (alarms): each alarm's configuration (the control plane's JSON), state and evaluation
    // schedule; history items by (timestamp, seq), kept after their alarm is deleted.
    r#"
CREATE TABLE cw_alarms (
    name TEXT PRIMARY KEY,
    arn TEXT NOT NULL,
    config TEXT NOT NULL,
    namespace TEXT,
    metric_name TEXT,
    managed_by TEXT,
    actions_enabled INTEGER NOT NULL,
    state TEXT NOT NULL,
    state_reason TEXT NOT NULL,
    state_reason_data TEXT,
    evaluation_state TEXT,
    state_updated REAL NOT NULL,
    state_transitioned REAL NOT NULL,
    config_updated REAL NOT NULL,
    next_evaluation INTEGER NOT NULL,
    actions_run_at INTEGER,
    actions_pending INTEGER NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX cw_alarms_due ON cw_alarms(next_evaluation);
CREATE INDEX cw_alarms_metric ON cw_alarms(namespace, metric_name);
CREATE INDEX cw_alarms_managed ON cw_alarms(managed_by) WHERE managed_by IS NOT NULL;
CREATE TABLE cw_alarm_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alarm_name TEXT NOT NULL,
    alarm_type TEXT NOT NULL,
    timestamp REAL NOT NULL,
    item_type TEXT NOT NULL,
    summary TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX cw_alarm_history_by_time ON cw_alarm_history(timestamp, seq);
CREATE INDEX cw_alarm_history_by_alarm ON cw_alarm_history(alarm_name, timestamp, seq);
"#,
    // Application Auto Scaling (scaling): scalable targets, policies, scheduled actions and activities.
    r#"
CREATE TABLE aas_targets (
    namespace TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    dimension TEXT NOT NULL,
    arn TEXT NOT NULL UNIQUE,
    min_capacity INTEGER NOT NULL,
    max_capacity INTEGER NOT NULL,
    role_arn TEXT,
    scale_in_suspended INTEGER NOT NULL,
    scale_out_suspended INTEGER NOT NULL,
    scheduled_suspended INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (namespace, resource_id, dimension)
);
CREATE TABLE aas_policies (
    arn TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    dimension TEXT NOT NULL,
    name TEXT NOT NULL,
    policy_type TEXT NOT NULL,
    config TEXT NOT NULL,
    alarms TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_at REAL,
    last_direction TEXT,
    last_to INTEGER,
    UNIQUE (namespace, resource_id, dimension, name)
);
CREATE TABLE aas_scheduled_actions (
    arn TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    dimension TEXT NOT NULL,
    name TEXT NOT NULL,
    schedule TEXT NOT NULL,
    timezone TEXT,
    start_time REAL,
    end_time REAL,
    min_capacity INTEGER,
    max_capacity INTEGER,
    created_at REAL NOT NULL,
    last_run REAL,
    UNIQUE (namespace, resource_id, dimension, name)
);
CREATE TABLE aas_activities (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    namespace TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    dimension TEXT NOT NULL,
    description TEXT NOT NULL,
    cause TEXT NOT NULL,
    start_time REAL NOT NULL,
    end_time REAL,
    status TEXT NOT NULL,
    status_message TEXT,
    not_scaled TEXT
);
CREATE INDEX aas_activities_resource ON aas_activities(namespace, resource_id, start_time);
"#,
    // Deployments (issue 12): one row per service deployment, its progress owned by the control plane as JSON;
    // a service's deployment settings (UpdateService's deploymentConfiguration and test listener rule).
    r#"
CREATE TABLE deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    arn TEXT NOT NULL UNIQUE,
    service_id INTEGER NOT NULL REFERENCES services(id),
    status TEXT NOT NULL,
    status_reason TEXT,
    stage TEXT NOT NULL,
    target_revision TEXT NOT NULL,
    source_revision TEXT,
    config TEXT NOT NULL,
    progress TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    stopped_at REAL,
    updated_at REAL NOT NULL
);
CREATE INDEX deployments_service ON deployments(service_id, id);
CREATE TABLE service_deployment_settings (
    service_id INTEGER PRIMARY KEY REFERENCES services(id),
    settings TEXT NOT NULL
);
"#,
];

pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    migrate_to(conn, MIGRATIONS.len())
}

/// The number of migrations before the first one containing `marker` (tests of a migration's data conversion).
#[cfg(test)]
pub(crate) fn version_before(marker: &str) -> Option<usize> {
    MIGRATIONS.iter().position(|m| m.contains(marker))
}

/// Runs the migrations up to (not including) number `target`.
pub(crate) fn migrate_to(conn: &mut Connection, target: usize) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().take(target).skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
