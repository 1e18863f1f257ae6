//! One route table: template.yaml declares exactly the routes of `shared/src/http/routes.rs`,
//! each on the function of the same name, so the local server and AWS cannot drift apart.

use serde_norway::Value;
use std::collections::BTreeSet;

use passwordless::http::routes::ROUTES;

fn template() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

fn functions(template: &Value) -> Vec<(String, Value)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(name, r)| (name.as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

#[test]
fn the_template_declares_exactly_the_route_table() {
    let template = template();
    let mut declared = BTreeSet::new();
    for (_, function) in functions(&template) {
        let binary = function["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("every function names its binary")
            .to_owned();
        for (_, event) in function["Properties"]["Events"].as_mapping().unwrap() {
            assert_eq!(event["Type"], "HttpApi");
            let method = event["Properties"]["Method"].as_str().unwrap().to_owned();
            let path = event["Properties"]["Path"].as_str().unwrap().to_owned();
            assert!(
                declared.insert((method, path, binary.clone())),
                "declared twice"
            );
        }
    }
    let table: BTreeSet<(String, String, String)> = ROUTES
        .iter()
        .map(|r| {
            (
                r.method.to_owned(),
                r.path.to_owned(),
                r.function.to_owned(),
            )
        })
        .collect();
    assert_eq!(declared, table);
}

#[test]
fn every_function_is_an_arm64_custom_runtime_built_by_cargo_lambda_from_a_workspace_binary() {
    let template = template();
    let globals = &template["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Architectures"][0], "arm64");
    assert_eq!(globals["Handler"], "bootstrap");
    assert_eq!(globals["MemorySize"], 128);
    let members =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml")).unwrap();
    for (name, function) in functions(&template) {
        assert_eq!(
            function["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{name}"
        );
        let binary = function["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap();
        assert!(
            members.contains(&format!("\"functions/{binary}\"")),
            "{name}: {binary} is a workspace member"
        );
        // Built from its own crate's folder, cargo-lambda selects that one package, with the
        // features of the test command's Lambda build, which `sam build` then reuses.
        assert_eq!(
            function["Properties"]["CodeUri"].as_str(),
            Some(format!("functions/{binary}").as_str()),
            "{name}"
        );
    }
}

#[test]
fn only_the_functions_that_send_links_or_verifications_may_send_mail_and_only_those_that_take_codes_delete_them(
) {
    let template = template();
    for (name, function) in functions(&template) {
        let policies = serde_norway::to_string(&function["Properties"]["Policies"]).unwrap();
        assert_eq!(
            policies.contains("ses:SendEmail"),
            matches!(
                name.as_str(),
                "PasswordlessSendFunction"
                    | "OAuth2PagesFunction"
                    | "ManagementFunction"
                    | "PasswordlessLoginFunction"
            ),
            "{name}"
        );
        assert!(
            !policies.contains('*') || policies.contains("/index/*"),
            "{name}: no wildcard actions"
        );
        let codes_statements: Vec<&Value> = function["Properties"]["Policies"][0]["Statement"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter(|s| {
                serde_norway::to_string(&s["Resource"])
                    .unwrap()
                    .contains("CodesTable")
            })
            .collect();
        let deletes_codes = codes_statements.iter().any(|s| {
            serde_norway::to_string(&s["Action"])
                .unwrap()
                .contains("DeleteItem")
        });
        assert_eq!(
            deletes_codes,
            matches!(
                name.as_str(),
                "PasswordlessLoginFunction" | "OAuth2PagesFunction" | "ManagementFunction"
            ),
            "{name}"
        );
    }
}

#[test]
fn m4_only_the_functions_that_sign_make_or_verify_with_keys_or_check_authenticator_codes_may_decrypt_with_the_signing_keys_kms_key(
) {
    let template = template();
    let key = &template["Resources"]["SigningKeysKmsKey"];
    assert_eq!(key["Type"], "AWS::KMS::Key");
    assert_eq!(key["Properties"]["EnableKeyRotation"], true);
    for (name, function) in functions(&template) {
        let policies = serde_norway::to_string(&function["Properties"]["Policies"]).unwrap();
        // The hosted pages sign nothing but open a user's sealed authenticator secret (S26).
        let signs = matches!(
            name.as_str(),
            "PasswordlessLoginFunction"
                | "ManagementFunction"
                | "OAuth2TokenFunction"
                | "OidcFunction"
                | "OAuth2PagesFunction"
        );
        assert_eq!(policies.contains("kms:Decrypt"), signs, "{name}");
        assert!(
            !policies.contains("kms:GenerateDataKey"),
            "{name}: the data key is made once, by create-tables"
        );
        let environment = serde_norway::to_string(&function["Properties"]["Environment"]).unwrap();
        assert_eq!(
            environment.contains("PASSWORDLESS_KMS_KEY_ID"),
            signs,
            "{name}"
        );
    }
}

#[test]
fn every_table_has_on_demand_billing_recovery_and_encryption_and_codes_expire_by_ttl() {
    let template = template();
    let tables: Vec<(&Value, &Value)> = template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::DynamoDB::Table")
        .collect();
    assert_eq!(tables.len(), 3);
    for (name, table) in tables {
        let properties = &table["Properties"];
        assert_eq!(properties["BillingMode"], "PAY_PER_REQUEST", "{name:?}");
        assert_eq!(
            properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true,
            "{name:?}"
        );
        assert_eq!(
            properties["SSESpecification"]["SSEEnabled"], true,
            "{name:?}"
        );
    }
    let ttl = &template["Resources"]["CodesTable"]["Properties"]["TimeToLiveSpecification"];
    assert_eq!(
        (ttl["AttributeName"].as_str(), ttl["Enabled"].as_bool()),
        (Some("expiresAt"), Some(true))
    );
}

/// Each function is built with a mailer exactly when the template lets it send through SES,
/// and with the KMS vault exactly when it may decrypt: what a function links and what it may
/// do on AWS are one list (`routes::functions`).
#[test]
fn the_functions_that_mail_and_seal_are_the_ones_the_template_lets_send_and_decrypt() {
    let template = template();
    for (name, function) in functions(&template) {
        let binary = function["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap();
        let (_, mails, seals) = passwordless::http::routes::functions::ALL
            .iter()
            .find(|(f, _, _)| *f == binary)
            .unwrap_or_else(|| panic!("{binary} is declared in routes::functions"));
        let actions: Vec<String> = function["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|policy| {
                policy["Statement"]
                    .as_sequence()
                    .cloned()
                    .unwrap_or_default()
            })
            .flat_map(|statement| match &statement["Action"] {
                Value::Sequence(actions) => actions.clone(),
                other => vec![other.clone()],
            })
            .filter_map(|action| action.as_str().map(str::to_owned))
            .collect();
        assert_eq!(
            actions.iter().any(|a| a == "ses:SendEmail"),
            *mails,
            "{name}: SES permission and the mailer agree"
        );
        assert_eq!(
            actions.iter().any(|a| a == "kms:Decrypt"),
            *seals,
            "{name}: KMS permission and the vault agree"
        );
        let kms_env = function["Properties"]["Environment"]["Variables"]
            .get("PASSWORDLESS_KMS_KEY_ID")
            .is_some();
        assert_eq!(
            kms_env, *seals,
            "{name}: a KMS key is configured where it seals"
        );
    }
}
