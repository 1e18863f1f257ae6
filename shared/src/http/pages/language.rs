//! The languages the hosted pages speak (English, French, German) and their messages: chosen
//! from `locale`, then `Accept-Language`, then the user's preferred languages.

use crate::http::HttpRequest;

/// The languages pages speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    En,
    Fr,
    De,
}

impl Language {
    pub(crate) fn tag(self) -> &'static str {
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
    pub(crate) fn choose(locale: Option<&str>, request: &HttpRequest) -> Self {
        Self::requested(locale, request).unwrap_or(Language::En)
    }

    /// The first of a user's `preferredLanguages` that the pages speak.
    pub(crate) fn first_supported(tags: &[String]) -> Option<Self> {
        tags.iter().find_map(|tag| Self::of_tag(tag))
    }

    /// The language the request asks for: the `locale` parameter, then `Accept-Language` by
    /// preference; `None` when neither names one the pages speak.
    pub(crate) fn requested(locale: Option<&str>, request: &HttpRequest) -> Option<Self> {
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

    pub(super) fn messages(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Language::En => EN,
            Language::Fr => FR,
            Language::De => DE,
        }
    }
}

pub(super) const EN: &[(&str, &str)] = &[
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

pub(super) const FR: &[(&str, &str)] = &[
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

pub(super) const DE: &[(&str, &str)] = &[
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
