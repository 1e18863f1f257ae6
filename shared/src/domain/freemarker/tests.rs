//! FreeMarker templates in the shape FusionAuth's defaults and guides use, rendered through
//! the translation.

use super::*;
use minijinja::{Environment, UndefinedBehavior};
use serde_json::json;

/// 2026-11-28T16:00:00Z
const NOW: i64 = 1_795_881_600_000;

fn render(source: &str, context: &serde_json::Value) -> String {
    try_render(source, context).unwrap_or_else(|e| panic!("{e}"))
}

/// Renders as email templates render: translated, then bounded (S29, S32).
fn try_render(source: &str, context: &serde_json::Value) -> Result<String, String> {
    let translated = translate(source).map_err(|e| e.to_string())?;
    let mut env = Environment::new();
    crate::domain::render::install(&mut env);
    runtime::install(&mut env);
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    let context = minijinja::context! {
        __now => NOW,
        ..minijinja::Value::from_serialize(context)
    };
    let prepared =
        crate::domain::render::prepare(&translated).map_err(|e| format!("{e}\n{translated}"))?;
    env.add_template_owned("t", prepared)
        .map_err(|e| format!("{e:#}\n{translated}"))?;
    let template = env.get_template("t").map_err(|e| e.to_string())?;
    crate::domain::render::render(&template, &context).map_err(|e| format!("{e}\n{translated}"))
}

fn render_text(source: &str) -> Result<String, String> {
    try_render(source, &json!({}))
}

fn login_context() -> serde_json::Value {
    json!({
        "code": "c0de",
        "user": {"tenantId": "t-1", "firstName": "Jared", "timezone": "America/Denver"},
        "state": {
            "client_id": "app 1",
            "redirect_uri": "https://app.example/cb?x=1&y=2",
            "tenantId": "ignored",
            "state": "a/b"
        },
        "timeToLive": 180
    })
}

/// The link of FusionAuth's default passwordless template: the code and tenant, then every
/// state entry but `tenantId`, each key and value URL-encoded.
const LINK_TEMPLATE: &str = r#"[#setting url_escaping_charset="UTF-8"]
[#-- The start call's state map arrives as `state`. --]
[#assign url = "https://login.example/oauth2/passwordless/${code}?tenantId=${user.tenantId}" /]
[#list state!{} as key, value][#if key != "tenantId" && value??][#assign url = url + "&" + key?url + "=" + value?url/][/#if][/#list]
Hello ${user.firstName!"there"},

Sign in: ${url}
"#;

#[test]
fn the_default_link_carries_every_state_entry_url_encoded() {
    assert_eq!(
        render(LINK_TEMPLATE, &login_context()),
        "Hello Jared,\n\nSign in: https://login.example/oauth2/passwordless/c0de?tenantId=t-1\
         &client_id=app%201&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Fx%3D1%26y%3D2\
         &state=a%2Fb\n"
    );
}

#[test]
fn without_state_the_link_is_code_and_tenant() {
    let mut context = login_context();
    context.as_object_mut().unwrap().remove("state");
    context["user"].as_object_mut().unwrap().remove("firstName");
    assert_eq!(
        render(LINK_TEMPLATE, &context),
        "Hello there,\n\nSign in: https://login.example/oauth2/passwordless/c0de?tenantId=t-1\n"
    );
}

#[test]
fn the_html_part_escapes_the_link_once() {
    let template: crate::domain::EmailTemplate = serde_json::from_value(json!({
        "name": "t",
        "defaultSubject": "Hi ${user.firstName}",
        "defaultHtmlTemplate": r#"[#assign url = "https://l.example/p/${code}?a=1&b=${user.firstName?url}"]<a href="${url}">${user.firstName?html}</a>"#,
        "defaultTextTemplate": "${user.firstName}",
    }))
    .unwrap();
    let context = json!({"code": "c", "user": {"firstName": "<J&J>"}});
    let (subject, html, text) = crate::domain::email::render_email(
        &template,
        &[],
        crate::domain::Instant::from_millis(NOW),
        &context,
    )
    .unwrap();
    assert_eq!(
        html,
        "<a href=\"https://l.example/p/c?a=1&amp;b=%3CJ%26J%3E\">&lt;J&amp;J&gt;</a>"
    );
    assert_eq!((subject.as_str(), text.as_str()), ("Hi <J&J>", "<J&J>"));
}

#[test]
fn the_expiry_subject_is_in_the_users_time_zone() {
    let subject = r#"[#setting time_zone = (user.timezone)!"UTC"]
[#assign expiry = (.now?long + timeToLive * 1000)?number_to_datetime /]
Your sign-in link expires at ${expiry?string("h:mm a z")}"#;
    assert_eq!(
        render(subject, &login_context()),
        "Your sign-in link expires at 9:03 AM MST"
    );
    let mut context = login_context();
    context["user"].as_object_mut().unwrap().remove("timezone");
    assert_eq!(
        render(subject, &context),
        "Your sign-in link expires at 4:03 PM UTC"
    );
}

#[test]
fn conditions_defaults_and_lists_behave_as_in_freemarker() {
    let source = r#"[#if user.lastName??]${user.lastName}[#elseif user.firstName?has_content]${user.firstName?upper_case}[#else]friend[/#if]
[#list user.roles![] as role]${role?counter}:${role}[#if role?has_next], [/#if][#else]none[/#list]
${(timeToLive / 60)?string("0")} min, ${missing.deeply.nested!"-"}, ${(1 < 2)?then("yes", "no")}
"#;
    let context =
        json!({"user": {"firstName": "ann", "roles": ["admin", "user"]}, "timeToLive": 180});
    assert_eq!(
        render(source, &context),
        "ANN\n1:admin, 2:user\n3 min, -, yes\n"
    );
    let context = json!({"user": {"lastName": "Bell"}, "timeToLive": 180});
    assert_eq!(render(source, &context), "Bell\nnone\n3 min, -, yes\n");
}

#[test]
fn minijinja_markup_in_a_freemarker_template_is_text() {
    assert_eq!(
        render(
            "${code} {{ not a tag }} {% neither %} {# nor #}",
            &json!({"code": "x"})
        ),
        "x {{ not a tag }} {% neither %} {# nor #}"
    );
}

#[test]
fn assignments_outlive_the_block_that_makes_them() {
    let source =
        "[#assign total = 0][#list [1, 2, 3] as n][#assign total = total + n][/#list]${total}";
    assert_eq!(render(source, &json!({})), "6");
}

#[test]
fn angle_bracket_syntax_works_too() {
    assert_eq!(
        render("<#if n gt 1>many<#else>one</#if>", &json!({"n": 2})),
        "many"
    );
}

#[test]
fn constructs_outside_the_subset_are_refused_with_their_line() {
    for (source, line, named) in [
        ("ok\n[#include \"x.ftl\"]", 2, "[#include]"),
        ("[#macro greet][/#macro]", 1, "[#macro]"),
        ("a\nb\n${user?api.foo}", 3, "api"),
        ("[@greet /]", 1, "macro calls"),
        ("${x?eval}", 1, "?eval"),
        ("[#setting number_format=\"0\"]", 1, "number_format"),
        ("[#setting url_escaping_charset=\"ISO-8859-1\"]", 1, "UTF-8"),
        ("[#if x]\nopen", 1, "not closed"),
        ("[/#list]", 1, "closes no"),
        ("${.vars}", 1, ".vars"),
        ("${1..3}", 1, "ranges"),
        ("[#-- never closed", 1, "comment"),
    ] {
        let error = translate(source).unwrap_err();
        assert_eq!(error.line, line, "{source}: {error}");
        assert!(error.message.contains(named), "{source}: {error}");
    }
}

#[test]
fn only_freemarker_markup_makes_a_template_freemarker() {
    assert!(is_freemarker("Hi ${user.firstName}"));
    assert!(is_freemarker("[#if x]y[/#if]"));
    assert!(!is_freemarker("Hi {{ user.firstName }}"));
    assert!(!is_freemarker("Costs $5 [not a tag]"));
}

#[test]
fn n1_a_freemarker_template_cannot_build_past_the_bounds() {
    let turns = format!(
        "[{}]",
        (0..40).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
    );
    for body in [
        "[#assign s = s + s]",
        "[#assign s = \"${s}${s}\"]",
        "[#assign s = s?replace(\"x\", s)]",
        "[#assign s = [s, s, s, s, s, s, s, s, s, s]?join(s)]",
    ] {
        let source = format!("[#assign s = \"xx\"][#list {turns} as i]{body}[/#list]${{s}}");
        let err = render_text(&source).expect_err(&source);
        assert!(err.contains("builds more than it may"), "{source}: {err}");
    }
}
