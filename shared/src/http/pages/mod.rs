//! Server-rendered hosted pages: built-in MiniJinja templates compiled once per process and run
//! bounded like email templates (S29), messages in English, French and German, the headers S15
//! asks of every page, and CSRF tokens bound to a cookie.

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use minijinja::{AutoEscape, Environment};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::{HttpRequest, HttpResponse};

mod secrets;
pub mod two_factor;
pub mod verify;
use crate::domain::render;
use crate::domain::secret::secrets_equal;
use crate::domain::{Tenant, TenantId};
use crate::ports::Entropy;

const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("layout.html")),
    ("link.html", include_str!("link.html")),
    ("expired.html", include_str!("expired.html")),
    ("error.html", include_str!("error.html")),
    ("server-error.html", include_str!("server-error.html")),
    ("authorize.html", include_str!("authorize.html")),
    ("check-email.html", include_str!("check-email.html")),
    ("other-browser.html", include_str!("other-browser.html")),
    ("limited.html", include_str!("limited.html")),
    ("signed-out.html", include_str!("signed-out.html")),
    ("verify.html", include_str!("verify.html")),
    ("two-factor.html", include_str!("two-factor.html")),
    ("verified.html", include_str!("verified.html")),
    ("verify-expired.html", include_str!("verify-expired.html")),
];

/// The page templates, parsed once per process.
fn environment() -> &'static Environment<'static> {
    builtin_set().0.as_ref()
}

fn builtin_set() -> &'static PageSet {
    static BUILTIN: OnceLock<PageSet> = OnceLock::new();
    BUILTIN.get_or_init(|| {
        let mut env = page_environment();
        add_builtin_templates(&mut env);
        PageSet(Arc::new(env))
    })
}

/// An environment with the pages' settings: HTML escaping everywhere, rendering bounded in
/// steps, output and memory like email templates (S29, S32).
fn page_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    render::install(&mut env);
    env
}

/// Adds the built-in templates, prepared for bounded rendering once per process (every
/// tenant's page set starts from them).
fn add_builtin_templates(env: &mut Environment<'static>) {
    static PREPARED: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    let prepared = PREPARED.get_or_init(|| {
        TEMPLATES
            .iter()
            // The built-in templates are checked by a unit test; a broken one renders as
            // the plain error page instead of taking the process down.
            .filter_map(|(name, source)| Some((*name, render::prepare(source).ok()?)))
            .collect()
    });
    for (name, source) in prepared {
        let _ = env.add_template_owned(*name, source.clone());
    }
}

/// The templates pages render with: the built-in ones, or a tenant's on top of them. Compiled
/// once per tenant version and shared (a warm Lambda or the local server renders from memory).
#[derive(Clone)]
pub struct PageSet(Arc<Environment<'static>>);

/// Tenants whose compiled page templates are kept; beyond, the cache starts over.
const PAGE_SET_CACHE_ENTRIES: usize = 256;

impl PageSet {
    pub fn builtin() -> PageSet {
        builtin_set().clone()
    }

    /// The tenant's pages: its `hostedPagesConfiguration.templates` over the built-in ones.
    pub fn for_tenant(tenant: &Tenant) -> PageSet {
        let given = tenant.hosted_pages_configuration.templates.given();
        if given.is_empty() {
            return PageSet::builtin();
        }
        // Keyed by the sources themselves, not the tenant's version: two stores in one
        // process (tests, or a tenant restored with an old update instant) may hold the same
        // tenant id and instant with other templates.
        type Cache = Mutex<HashMap<(TenantId, [u8; 32]), PageSet>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let cache = CACHE.get_or_init(Cache::default);
        let mut fingerprint = Sha256::new();
        for (page, _, source) in &given {
            for part in [
                page.as_bytes(),
                &source.len().to_be_bytes(),
                source.as_bytes(),
            ] {
                fingerprint.update(part);
            }
        }
        let key = (tenant.id, <[u8; 32]>::from(fingerprint.finalize()));
        if let Some(set) = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return set.clone();
        }
        let mut env = page_environment();
        add_builtin_templates(&mut env);
        for (page, _, source) in given {
            // Checked when the tenant was saved (S29); one that fails now keeps the built-in.
            let prepared = render::prepare(source).map_err(|e| e.to_string());
            if let Err(e) = prepared.and_then(|prepared| {
                env.add_template_owned(format!("{page}.html"), prepared)
                    .map_err(|e| e.to_string())
            }) {
                tracing::warn!(tenant_id = %tenant.id, page, reason = %e, "a tenant page template does not compile");
            }
        }
        let set = PageSet(Arc::new(env));
        let mut cache = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= PAGE_SET_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, set.clone());
        set
    }

    fn is_builtin(&self) -> bool {
        Arc::ptr_eq(&self.0, &builtin_set().0)
    }
}

/// The languages pages speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    En,
    Fr,
    De,
}

impl Language {
    pub fn tag(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Fr => "fr",
            Language::De => "de",
        }
    }

    fn of_tag(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Language::En),
            "fr" => Some(Language::Fr),
            "de" => Some(Language::De),
            _ => None,
        }
    }

    /// The page language: the `locale` parameter, then `Accept-Language` by preference, then
    /// English.
    pub fn choose(locale: Option<&str>, request: &HttpRequest) -> Self {
        Self::requested(locale, request).unwrap_or(Language::En)
    }

    /// The first of a user's `preferredLanguages` that the pages speak.
    pub fn first_supported(tags: &[String]) -> Option<Self> {
        tags.iter().find_map(|tag| Self::of_tag(tag))
    }

    /// The language the request asks for: the `locale` parameter, then `Accept-Language` by
    /// preference; `None` when neither names one the pages speak.
    pub fn requested(locale: Option<&str>, request: &HttpRequest) -> Option<Self> {
        if let Some(language) = locale.and_then(Self::of_tag) {
            return Some(language);
        }
        let accept = request
            .headers
            .get(http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut offers: Vec<(f32, usize, Language)> = accept
            .split(',')
            .take(32)
            .enumerate()
            .filter_map(|(order, item)| {
                let mut parts = item.split(';');
                let language = Self::of_tag(parts.next()?)?;
                let quality = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                (quality > 0.0).then_some((quality, order, language))
            })
            .collect();
        offers.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        offers.first().map(|o| o.2)
    }

    /// One message in this language (English if a key were missing: a test keeps them equal).
    pub fn message(self, key: &str) -> &'static str {
        self.messages()
            .iter()
            .chain(EN)
            .find(|(k, _)| *k == key)
            .map_or("", |(_, v)| v)
    }

    fn messages(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Language::En => EN,
            Language::Fr => FR,
            Language::De => DE,
        }
    }
}

const EN: &[(&str, &str)] = &[
    ("two-factor_title", "Two-step sign-in"),
    ("two_factor_heading", "One more step"),
    ("two_factor_text", "Enter the code your authenticator app shows, or one of your recovery codes."),
    ("two_factor_text_email", "Enter the code your authenticator app shows, or have a code emailed to you below."),
    ("two_factor_code_label", "Code"),
    ("two_factor_trust", "Trust this device for {days} days"),
    ("two_factor_recovery_note", "Lost your device? Enter one of your recovery codes instead."),
    ("two_factor_send_email", "Email a code to {address} instead"),
    ("two_factor_sent", "A code is on its way. It works once and for a short while."),
    ("two_factor_problem", "That code is not right. Try again."),
    ("two_factor_enrol_text", "This account signs in with a second factor. Add this key to your authenticator app, then enter the code the app shows."),
    ("two_factor_enrol_link", "Open in an authenticator app"),
    ("two_factor_enrol_code_label", "Code from the app"),
    ("two_factor_recovery_heading", "Save your recovery codes"),
    ("two_factor_recovery_text", "If you lose your device, each of these codes works once in place of a code from the app. They are shown only now: keep them somewhere safe."),
    ("authorize_title", "Sign in"),
    ("authorize_heading", "Sign in"),
    ("authorize_text", "Enter your email address and we will send you a link to sign in. No password needed."),
    ("email_label", "Email address"),
    ("email_me_a_link", "Email me a login link"),
    ("email_problem", "Enter a valid email address."),
    ("check-email_title", "Check your email"),
    ("check_email_heading", "Check your email"),
    ("check_email_text", "If this address has an account, a sign-in link is on its way. Open it in this browser to finish signing in."),
    ("check_email_note", "The link works once and for a few minutes. Nothing arrived? Check your spam folder, then ask again."),
    ("code_label", "Or type the code from the email"),
    ("sign_in", "Sign in"),
    ("code_problem", "That code is not right. Check the email and try again."),
    ("code_held", "Too many wrong codes were typed from here. Wait ten minutes, then try again."),
    ("other-browser_title", "Open the link where you asked"),
    ("other_browser_heading", "Open this link in the browser where you asked for it"),
    ("other_browser_text", "For your safety, this link signs you in only in the browser where you asked for it. In that browser, type the code from the same email, or open the link there."),
    ("other_browser_confirm_text", "Did you ask for this link yourself, on another device? Then you may sign in on this device instead."),
    ("other_browser_confirm", "Sign in on this device"),
    ("limited_title", "Too many requests"),
    ("limited_heading", "Too many requests"),
    ("limited_text", "Too many sign-in links were asked for. Wait a minute, then try again."),
    ("try_again", "Try again"),
    ("signed-out_title", "Signed out"),
    ("signed_out_heading", "You are signed out"),
    ("signed_out_text", "Your session has ended. You can close this page."),
    ("link_title", "Sign in"),
    ("link_heading", "Sign in"),
    ("link_text", "You opened a sign-in link. Continue to finish signing in."),
    ("continue", "Continue"),
    ("link_code_label", "The code from the same email"),
    ("link_note", "If you did not ask to sign in, close this page: nothing happens until you continue."),
    ("expired_title", "Link expired"),
    ("expired_heading", "This link has expired"),
    ("expired_text", "Sign-in links work once and only for a few minutes. Ask for a new one to sign in."),
    ("send_new_link", "Send me a new link"),
    ("server-error_title", "Something went wrong"),
    ("server_error_heading", "Something went wrong on our side"),
    ("server_error_text", "Your sign-in could not be handled just now. Wait a moment, then try again. If it keeps happening, tell the application's support this request id:"),
    ("error_title", "Sign-in problem"),
    ("error_heading", "This sign-in request cannot be used"),
    ("error_text", "The application that sent you here made a request this service cannot accept. Go back to the application and try again."),
    ("verify_title", "Confirm your address"),
    ("verify_email_heading", "Confirm your email address"),
    ("verify_registration_heading", "Confirm your registration"),
    ("verify_text", "You opened a verification link. Confirm to finish."),
    ("verify_code_label", "The code from the same email"),
    ("verify_button", "Confirm"),
    ("verify_note", "If you did not ask for this, close this page: nothing happens until you confirm."),
    ("verify_code_problem", "That code is not right. Check the email and try again."),
    ("verified_title", "Confirmed"),
    ("verified_email_heading", "Your email address is confirmed"),
    ("verified_registration_heading", "Your registration is confirmed"),
    ("verified_text", "Thank you. You can close this page."),
    ("verify-expired_title", "Link expired"),
    ("verify_expired_heading", "This verification link cannot be used"),
    ("verify_expired_text", "It has expired or was used already. Ask the application for a new one."),
];

const FR: &[(&str, &str)] = &[
    ("two-factor_title", "Connexion en deux étapes"),
    ("two_factor_heading", "Encore une étape"),
    ("two_factor_text", "Saisissez le code qu’affiche votre application d’authentification, ou l’un de vos codes de récupération."),
    ("two_factor_text_email", "Saisissez le code qu’affiche votre application d’authentification, ou faites-vous envoyer un code par e-mail ci-dessous."),
    ("two_factor_code_label", "Code"),
    ("two_factor_trust", "Faire confiance à cet appareil pendant {days} jours"),
    ("two_factor_recovery_note", "Appareil perdu ? Saisissez plutôt l’un de vos codes de récupération."),
    ("two_factor_send_email", "M’envoyer plutôt un code à {address}"),
    ("two_factor_sent", "Un code est en route. Il ne sert qu’une fois et peu de temps."),
    ("two_factor_problem", "Ce code n’est pas le bon. Réessayez."),
    ("two_factor_enrol_text", "Ce compte se connecte avec un second facteur. Ajoutez cette clé à votre application d’authentification, puis saisissez le code qu’elle affiche."),
    ("two_factor_enrol_link", "Ouvrir dans une application d’authentification"),
    ("two_factor_enrol_code_label", "Code de l’application"),
    ("two_factor_recovery_heading", "Conservez vos codes de récupération"),
    ("two_factor_recovery_text", "Si vous perdez votre appareil, chacun de ces codes remplace une fois un code de l’application. Ils ne sont affichés que maintenant : gardez-les en lieu sûr."),
    ("authorize_title", "Connexion"),
    ("authorize_heading", "Connexion"),
    ("authorize_text", "Saisissez votre adresse e-mail et nous vous enverrons un lien de connexion. Aucun mot de passe requis."),
    ("email_label", "Adresse e-mail"),
    ("email_me_a_link", "M’envoyer un lien de connexion"),
    ("email_problem", "Saisissez une adresse e-mail valide."),
    ("check-email_title", "Consultez vos e-mails"),
    ("check_email_heading", "Consultez vos e-mails"),
    ("check_email_text", "Si cette adresse a un compte, un lien de connexion est en route. Ouvrez-le dans ce navigateur pour terminer la connexion."),
    ("check_email_note", "Le lien ne sert qu’une fois et pendant quelques minutes. Rien reçu ? Vérifiez vos indésirables, puis redemandez."),
    ("code_label", "Ou saisissez le code reçu par e-mail"),
    ("sign_in", "Se connecter"),
    ("code_problem", "Ce code n’est pas le bon. Vérifiez l’e-mail et réessayez."),
    ("code_held", "Trop de codes erronés ont été saisis depuis cet endroit. Attendez dix minutes, puis réessayez."),
    ("other-browser_title", "Ouvrez le lien là où vous l’avez demandé"),
    ("other_browser_heading", "Ouvrez ce lien dans le navigateur où vous l’avez demandé"),
    ("other_browser_text", "Pour votre sécurité, ce lien ne vous connecte que dans le navigateur où vous l’avez demandé. Dans ce navigateur, saisissez le code du même e-mail, ou ouvrez-y le lien."),
    ("other_browser_confirm_text", "Vous avez demandé ce lien vous-même, sur un autre appareil ? Vous pouvez alors vous connecter sur celui-ci."),
    ("other_browser_confirm", "Me connecter sur cet appareil"),
    ("limited_title", "Trop de demandes"),
    ("limited_heading", "Trop de demandes"),
    ("limited_text", "Trop de liens de connexion ont été demandés. Attendez une minute, puis réessayez."),
    ("try_again", "Réessayer"),
    ("signed-out_title", "Déconnecté"),
    ("signed_out_heading", "Vous êtes déconnecté"),
    ("signed_out_text", "Votre session est terminée. Vous pouvez fermer cette page."),
    ("link_title", "Connexion"),
    ("link_heading", "Connexion"),
    ("link_text", "Vous avez ouvert un lien de connexion. Continuez pour terminer la connexion."),
    ("continue", "Continuer"),
    ("link_code_label", "Le code du même e-mail"),
    ("link_note", "Si vous n’avez pas demandé à vous connecter, fermez cette page : rien ne se passe tant que vous ne continuez pas."),
    ("expired_title", "Lien expiré"),
    ("expired_heading", "Ce lien a expiré"),
    ("expired_text", "Les liens de connexion ne servent qu’une fois et pendant quelques minutes. Demandez-en un nouveau pour vous connecter."),
    ("send_new_link", "M’envoyer un nouveau lien"),
    ("server-error_title", "Une erreur est survenue"),
    ("server_error_heading", "Une erreur est survenue de notre côté"),
    ("server_error_text", "Votre connexion n’a pas pu être traitée pour le moment. Patientez un instant, puis réessayez. Si cela se reproduit, donnez cet identifiant de requête au support de l’application :"),
    ("error_title", "Problème de connexion"),
    ("error_heading", "Cette demande de connexion n’est pas utilisable"),
    ("error_text", "L’application qui vous a envoyé ici a fait une demande que ce service ne peut pas accepter. Revenez à l’application et réessayez."),
    ("verify_title", "Confirmez votre adresse"),
    ("verify_email_heading", "Confirmez votre adresse e-mail"),
    ("verify_registration_heading", "Confirmez votre inscription"),
    ("verify_text", "Vous avez ouvert un lien de vérification. Confirmez pour terminer."),
    ("verify_code_label", "Le code du même e-mail"),
    ("verify_button", "Confirmer"),
    ("verify_note", "Si vous n’avez rien demandé, fermez cette page : rien ne se passe tant que vous ne confirmez pas."),
    ("verify_code_problem", "Ce code n’est pas le bon. Vérifiez l’e-mail et réessayez."),
    ("verified_title", "Confirmé"),
    ("verified_email_heading", "Votre adresse e-mail est confirmée"),
    ("verified_registration_heading", "Votre inscription est confirmée"),
    ("verified_text", "Merci. Vous pouvez fermer cette page."),
    ("verify-expired_title", "Lien expiré"),
    ("verify_expired_heading", "Ce lien de vérification n’est pas utilisable"),
    ("verify_expired_text", "Il a expiré ou a déjà servi. Demandez-en un nouveau à l’application."),
];

const DE: &[(&str, &str)] = &[
    ("two-factor_title", "Anmeldung in zwei Schritten"),
    ("two_factor_heading", "Noch ein Schritt"),
    ("two_factor_text", "Geben Sie den Code ein, den Ihre Authenticator-App anzeigt, oder einen Ihrer Wiederherstellungscodes."),
    ("two_factor_text_email", "Geben Sie den Code ein, den Ihre Authenticator-App anzeigt, oder lassen Sie sich unten einen Code per E-Mail senden."),
    ("two_factor_code_label", "Code"),
    ("two_factor_trust", "Diesem Gerät {days} Tage lang vertrauen"),
    ("two_factor_recovery_note", "Gerät verloren? Geben Sie stattdessen einen Ihrer Wiederherstellungscodes ein."),
    ("two_factor_send_email", "Stattdessen einen Code an {address} senden"),
    ("two_factor_sent", "Ein Code ist unterwegs. Er gilt einmal und nur kurze Zeit."),
    ("two_factor_problem", "Dieser Code stimmt nicht. Versuchen Sie es erneut."),
    ("two_factor_enrol_text", "Dieses Konto meldet sich mit einem zweiten Faktor an. Fügen Sie diesen Schlüssel Ihrer Authenticator-App hinzu und geben Sie dann den Code ein, den die App anzeigt."),
    ("two_factor_enrol_link", "In einer Authenticator-App öffnen"),
    ("two_factor_enrol_code_label", "Code aus der App"),
    ("two_factor_recovery_heading", "Bewahren Sie Ihre Wiederherstellungscodes auf"),
    ("two_factor_recovery_text", "Wenn Sie Ihr Gerät verlieren, ersetzt jeder dieser Codes einmal einen Code aus der App. Sie werden nur jetzt angezeigt: Bewahren Sie sie sicher auf."),
    ("authorize_title", "Anmelden"),
    ("authorize_heading", "Anmelden"),
    ("authorize_text", "Geben Sie Ihre E-Mail-Adresse ein, und wir senden Ihnen einen Anmeldelink. Kein Passwort nötig."),
    ("email_label", "E-Mail-Adresse"),
    ("email_me_a_link", "Anmeldelink per E-Mail senden"),
    ("email_problem", "Geben Sie eine gültige E-Mail-Adresse ein."),
    ("check-email_title", "Prüfen Sie Ihre E-Mails"),
    ("check_email_heading", "Prüfen Sie Ihre E-Mails"),
    ("check_email_text", "Wenn zu dieser Adresse ein Konto gehört, ist ein Anmeldelink unterwegs. Öffnen Sie ihn in diesem Browser, um die Anmeldung abzuschließen."),
    ("check_email_note", "Der Link gilt einmal und nur wenige Minuten. Nichts angekommen? Sehen Sie im Spam-Ordner nach und fordern Sie ihn erneut an."),
    ("code_label", "Oder geben Sie den Code aus der E-Mail ein"),
    ("sign_in", "Anmelden"),
    ("code_problem", "Dieser Code stimmt nicht. Prüfen Sie die E-Mail und versuchen Sie es erneut."),
    ("code_held", "Von hier wurden zu viele falsche Codes eingegeben. Warten Sie zehn Minuten und versuchen Sie es dann erneut."),
    ("other-browser_title", "Link im anfragenden Browser öffnen"),
    ("other_browser_heading", "Öffnen Sie diesen Link in dem Browser, in dem Sie ihn angefordert haben"),
    ("other_browser_text", "Zu Ihrer Sicherheit meldet Sie dieser Link nur in dem Browser an, in dem Sie ihn angefordert haben. Geben Sie dort den Code aus derselben E-Mail ein oder öffnen Sie den Link dort."),
    ("other_browser_confirm_text", "Sie haben diesen Link selbst auf einem anderen Gerät angefordert? Dann können Sie sich stattdessen auf diesem Gerät anmelden."),
    ("other_browser_confirm", "Auf diesem Gerät anmelden"),
    ("limited_title", "Zu viele Anfragen"),
    ("limited_heading", "Zu viele Anfragen"),
    ("limited_text", "Es wurden zu viele Anmeldelinks angefordert. Warten Sie eine Minute und versuchen Sie es dann erneut."),
    ("try_again", "Erneut versuchen"),
    ("signed-out_title", "Abgemeldet"),
    ("signed_out_heading", "Sie sind abgemeldet"),
    ("signed_out_text", "Ihre Sitzung ist beendet. Sie können diese Seite schließen."),
    ("link_title", "Anmelden"),
    ("link_heading", "Anmelden"),
    ("link_text", "Sie haben einen Anmeldelink geöffnet. Fahren Sie fort, um die Anmeldung abzuschließen."),
    ("continue", "Weiter"),
    ("link_code_label", "Der Code aus derselben E-Mail"),
    ("link_note", "Wenn Sie keine Anmeldung angefordert haben, schließen Sie diese Seite: Ohne „Weiter“ geschieht nichts."),
    ("expired_title", "Link abgelaufen"),
    ("expired_heading", "Dieser Link ist abgelaufen"),
    ("expired_text", "Anmeldelinks gelten nur einmal und nur wenige Minuten. Fordern Sie einen neuen an, um sich anzumelden."),
    ("send_new_link", "Neuen Link senden"),
    ("server-error_title", "Etwas ist schiefgelaufen"),
    ("server_error_heading", "Bei uns ist etwas schiefgelaufen"),
    ("server_error_text", "Ihre Anmeldung konnte gerade nicht bearbeitet werden. Warten Sie einen Moment und versuchen Sie es dann erneut. Wenn es wieder passiert, nennen Sie dem Support der Anwendung diese Anfrage-ID:"),
    ("error_title", "Anmeldeproblem"),
    ("error_heading", "Diese Anmeldeanfrage kann nicht verwendet werden"),
    ("error_text", "Die Anwendung, die Sie hierher geschickt hat, hat eine Anfrage gestellt, die dieser Dienst nicht annehmen kann. Kehren Sie zur Anwendung zurück und versuchen Sie es erneut."),
    ("verify_title", "Adresse bestätigen"),
    ("verify_email_heading", "Bestätigen Sie Ihre E-Mail-Adresse"),
    ("verify_registration_heading", "Bestätigen Sie Ihre Registrierung"),
    ("verify_text", "Sie haben einen Bestätigungslink geöffnet. Bestätigen Sie, um abzuschließen."),
    ("verify_code_label", "Der Code aus derselben E-Mail"),
    ("verify_button", "Bestätigen"),
    ("verify_note", "Wenn Sie nichts angefordert haben, schließen Sie diese Seite: Ohne Bestätigung geschieht nichts."),
    ("verify_code_problem", "Dieser Code stimmt nicht. Prüfen Sie die E-Mail und versuchen Sie es erneut."),
    ("verified_title", "Bestätigt"),
    ("verified_email_heading", "Ihre E-Mail-Adresse ist bestätigt"),
    ("verified_registration_heading", "Ihre Registrierung ist bestätigt"),
    ("verified_text", "Danke. Sie können diese Seite schließen."),
    ("verify-expired_title", "Link abgelaufen"),
    ("verify_expired_heading", "Dieser Bestätigungslink kann nicht verwendet werden"),
    ("verify_expired_text", "Er ist abgelaufen oder wurde bereits verwendet. Fordern Sie bei der Anwendung einen neuen an."),
];

/// One page to render: a built-in template, its status and what it shows.
pub struct Page {
    /// The templates to render with.
    pub set: PageSet,
    pub status: StatusCode,
    /// `link`, `expired` or `error`.
    pub name: &'static str,
    pub language: Language,
    pub context: Value,
    /// `Set-Cookie` values to send with the page (a fresh CSRF cookie).
    pub cookies: Vec<String>,
    /// Origins besides this one a form on the page may end up at: the client's redirect URIs,
    /// where a completed sign-in is redirected (CSP `form-action`, S34).
    pub form_origins: Vec<String>,
}

/// Renders a page with the S15 headers. A style nonce per response keeps the CSP strict while
/// the page carries its own CSS inline (no external request, works without JavaScript).
/// The page for a server error on a hosted page: 500, in the browser's language, with the
/// request id the logs carry (S25).
pub fn server_error(
    request: &HttpRequest,
    request_id: &str,
    entropy: &dyn Entropy,
) -> HttpResponse {
    render(
        Page {
            set: PageSet::builtin(),
            status: StatusCode::INTERNAL_SERVER_ERROR,
            name: "server-error",
            language: Language::choose(None, request),
            context: json!({ "request_id": request_id }),
            cookies: Vec::new(),
            form_origins: Vec::new(),
        },
        entropy,
    )
}

pub fn render(page: Page, entropy: &dyn Entropy) -> HttpResponse {
    let nonce = random_token(entropy, 16).unwrap_or_default();
    let messages: serde_json::Map<String, Value> = page
        .language
        .messages()
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    let title = messages
        .get(&format!("{}_title", page.name))
        .cloned()
        .unwrap_or_default();
    let mut context =
        json!({"t": messages, "lang": page.language.tag(), "nonce": nonce, "title": title});
    if let (Value::Object(into), Value::Object(extra)) = (&mut context, page.context) {
        into.extend(extra);
    }
    let render_with = |env: &Environment<'static>, context: &Value| {
        env.get_template(&format!("{}.html", page.name))
            .map_err(|e| e.to_string())
            .and_then(|template| render::render(&template, context).map_err(|e| e.to_string()))
    };
    // A tenant's template renders with markers for the page's secrets, put back only where
    // they belong (S34); one that fails at render time (out of fuel, say) or misplaces a
    // secret leaves the page usable: the built-in one stands in.
    let tenant_page = match page.set.is_builtin() {
        true => None,
        false => {
            let mut masked_context = context.clone();
            let masked = secrets::mask(&mut masked_context);
            match render_with(page.set.0.as_ref(), &masked_context) {
                Ok(html) => {
                    let placed = masked.unmask(&html);
                    if placed.is_none() {
                        tracing::warn!(page = page.name, "a tenant page template placed a page secret where it does not belong, or posts off this origin");
                    }
                    placed
                }
                Err(reason) => {
                    tracing::warn!(page = page.name, reason = %reason, "a tenant page template failed to render");
                    None
                }
            }
        }
    };
    let html = match tenant_page {
        Some(html) => Ok(html),
        None => render_with(environment(), &context),
    };
    let (status, html) = match html {
        Ok(html) => (page.status, html),
        Err(reason) => {
            tracing::error!(page = page.name, reason = %reason, "a built-in page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>Error</title><p>Something went wrong.</p>".to_owned(),
            )
        }
    };
    let mut response = http::Response::new(Bytes::from(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    secure_page_headers(headers, &nonce, &page.form_origins);
    for cookie in page.cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(http::header::SET_COOKIE, value);
        }
    }
    response
}

/// S15: no referrer, no caching, no sniffing, no framing, and nothing but the page's own
/// inline style may load; forms post only here, or end at the client's origins (S34).
fn secure_page_headers(headers: &mut http::HeaderMap, style_nonce: &str, form_origins: &[String]) {
    let mut form_action = String::from("'self'");
    for origin in form_origins {
        if !form_action.split(' ').any(|o| o == origin) {
            form_action.push(' ');
            form_action.push_str(origin);
        }
    }
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{style_nonce}'; img-src 'self' data:; base-uri 'none'; form-action {form_action}; frame-ancestors 'none'"
    );
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(http::header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        http::header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    );
}

/// A redirect after a completed page action, with the page headers (no referrer: the URL of
/// the page that redirects carries the link's code).
pub fn redirect(location: &str) -> HttpResponse {
    let mut response = http::Response::new(Bytes::new());
    *response.status_mut() = StatusCode::FOUND;
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(http::header::LOCATION, location);
    }
    secure_page_headers(headers, "", &[]);
    response
}

/// `bytes` random bytes as base64url.
fn random_token(entropy: &dyn Entropy, bytes: usize) -> Option<String> {
    let mut buffer = vec![0u8; bytes];
    entropy.fill(&mut buffer).ok()?;
    Some(crate::domain::signing::b64url(&buffer))
}

/// The pages' cookies (S15): HttpOnly, SameSite=Lax, and `__Host-` prefixed and Secure when
/// the public URL is https; on a plain-http public URL (local development only) the same
/// without prefix and Secure, which clients drop over http.
#[derive(Debug, Clone, Copy)]
pub struct Cookies {
    https: bool,
}

impl Cookies {
    pub fn for_public_url(public_url: &str) -> Self {
        Self {
            https: public_url.starts_with("https://"),
        }
    }

    fn name(&self, base: &str) -> String {
        match self.https {
            true => format!("__Host-passwordless-{base}"),
            false => format!("passwordless-{base}"),
        }
    }

    /// The cookie's value when it looks like a token this server makes (base64url, 43
    /// characters). Over https only the `__Host-` name counts: a sibling domain cannot plant it.
    pub fn token(&self, request: &HttpRequest, base: &str) -> Option<String> {
        self.value(request, base, TOKEN_LEN)
    }

    /// The cookie's value when it is `len` characters of base64url or hex.
    pub fn value(&self, request: &HttpRequest, base: &str, len: usize) -> Option<String> {
        cookie(request, &self.name(base))
            .filter(|v| v.len() == len)
            .filter(|v| {
                v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    }

    /// A `Set-Cookie` value; `max_age` in seconds, none for a session cookie.
    pub fn set(&self, base: &str, value: &str, max_age: Option<i64>) -> String {
        let mut cookie = format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax",
            self.name(base)
        );
        if self.https {
            cookie.push_str("; Secure");
        }
        if let Some(seconds) = max_age {
            cookie.push_str(&format!("; Max-Age={seconds}"));
        }
        cookie
    }
}

/// Tokens in cookies: 32 random bytes as base64url.
const TOKEN_LEN: usize = 43;

/// CSRF protection for page forms (S15): a random token in a cookie the page sets, repeated
/// in a hidden field; a POST must bring both, equal. Cross-site forms can read neither.
pub struct Csrf {
    cookies: Cookies,
}

impl Csrf {
    pub fn for_public_url(public_url: &str) -> Self {
        Self {
            cookies: Cookies::for_public_url(public_url),
        }
    }

    /// The token for a form, and the cookie to set when the browser has none yet.
    pub fn token(
        &self,
        request: &HttpRequest,
        entropy: &dyn Entropy,
    ) -> Option<(String, Option<String>)> {
        if let Some(existing) = self.cookies.token(request, "csrf") {
            return Some((existing, None));
        }
        let token = random_token(entropy, 32)?;
        let set = self.cookies.set("csrf", &token, None);
        Some((token, Some(set)))
    }

    /// Whether a POST's form token matches its cookie (constant time, S3).
    pub fn holds(&self, request: &HttpRequest, form_token: Option<&str>) -> bool {
        match (self.cookies.token(request, "csrf"), form_token) {
            (Some(cookie), Some(form)) => secrets_equal(cookie.as_bytes(), form.as_bytes()),
            _ => false,
        }
    }
}

/// The value of the first cookie called `name`.
pub fn cookie(request: &HttpRequest, name: &str) -> Option<String> {
    request
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// What any hosted page's form or query may say about the page itself: the language asked
/// for (FusionAuth's `locale` parameter) and the client whose look it takes.
#[derive(Debug, Default, Deserialize)]
pub struct PageFields {
    pub locale: Option<String>,
    pub client_id: Option<String>,
}

impl PageFields {
    /// The page's fields in a form body; a repeated one leaves both unsaid, which only costs
    /// the page its language and look.
    pub fn of_form(request: &HttpRequest) -> Self {
        request.form().unwrap_or_default()
    }

    /// The page's fields in the query string, by the same rule.
    pub fn of_query(request: &HttpRequest) -> Self {
        request.query().unwrap_or_default()
    }

    /// The form's fields, each falling back to the query's (a link's `locale` rides in its
    /// query, a page's form may repeat it).
    pub fn of_form_then_query(request: &HttpRequest) -> Self {
        let form = Self::of_form(request);
        let query = Self::of_query(request);
        PageFields {
            locale: form.locale.or(query.locale),
            client_id: form.client_id.or(query.client_id),
        }
    }

    pub fn language(&self, request: &HttpRequest) -> Language {
        Language::choose(self.locale.as_deref(), request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_page_compiles_and_renders_in_every_language() {
        for (name, source) in TEMPLATES {
            Environment::new()
                .add_template_owned(*name, render::prepare(source).unwrap())
                .unwrap();
        }
        let env = environment();
        for (name, _) in TEMPLATES.iter().filter(|(n, _)| *n != "layout.html") {
            let template = env.get_template(name).unwrap();
            for language in [Language::En, Language::Fr, Language::De] {
                let messages: serde_json::Map<String, Value> = language
                    .messages()
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), json!(v)))
                    .collect();
                let html = render::render(
                    &template,
                    &json!({"t": messages, "lang": language.tag(), "nonce": "n", "title": "t", "action": "/a", "csrf": "c", "detail": "d", "retry": "/r"}),
                )
                .unwrap();
                assert!(
                    html.contains(&format!("lang=\"{}\"", language.tag())),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn every_language_has_every_message() {
        fn keys(m: &'static [(&'static str, &'static str)]) -> Vec<&'static str> {
            m.iter().map(|(k, _)| *k).collect()
        }
        assert_eq!(keys(EN), keys(FR));
        assert_eq!(keys(EN), keys(DE));
    }

    fn request_with(header: &str, value: &str) -> HttpRequest {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::HeaderName::from_bytes(header.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        HttpRequest {
            method: http::Method::GET,
            path: "/".into(),
            query: None,
            headers,
            body: Bytes::new(),
            source_ip: None,
            request_id: "r".into(),
        }
    }

    #[test]
    fn the_locale_parameter_wins_then_accept_language_by_quality() {
        let request = request_with("accept-language", "it, de;q=0.5, fr-CH;q=0.8");
        assert_eq!(Language::choose(None, &request), Language::Fr);
        assert_eq!(Language::choose(Some("de_DE"), &request), Language::De);
        assert_eq!(Language::choose(Some("xx"), &request), Language::Fr);
        let none = request_with("accept-language", "it, es;q=0.5");
        assert_eq!(Language::choose(None, &none), Language::En);
    }

    #[test]
    fn s15_a_form_token_must_equal_its_cookie() {
        let csrf = Csrf::for_public_url("https://login.example");
        let token = "a".repeat(TOKEN_LEN);
        let request = request_with("cookie", &format!("x=1; __Host-passwordless-csrf={token}"));
        assert!(csrf.holds(&request, Some(&token)));
        assert!(!csrf.holds(&request, Some(&"b".repeat(TOKEN_LEN))));
        assert!(!csrf.holds(&request, None));
        // Over https only the __Host- cookie counts: a sibling domain cannot plant it.
        let planted = request_with("cookie", &format!("passwordless-csrf={token}"));
        assert!(!csrf.holds(&planted, Some(&token)));
    }
}
