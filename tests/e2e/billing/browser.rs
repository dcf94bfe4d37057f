//! The sign-up page in a real browser: Debian's headless Chromium, driven through its
//! chromedriver (WebDriver) by fantoccini. Fill the form, submit, enter the mailed
//! code, and land on the Checkout page the platform made for this sign-up.

use super::paid::start_paid_with;
use fantoccini::{ClientBuilder, Locator};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> (Driver, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("chromedriver cannot start ({e}): `.ci/run` installs Debian's chromium and chromium-driver")
        });
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Driver(child), port)
}

#[test]
fn the_sign_up_page_in_headless_chromium_lands_on_checkout() {
    // The page, not TLS, is under test: Chromium would not trust the platform CA.
    let t = start_paid_with("7d", &[("MICRO_INSECURE_HTTP", "true")]);
    let (_driver, port) = chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                format!("--user-data-dir={}", profile.path().display()),
            ]}),
        );
        let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        browser.goto(&format!("{}/signup", t.url)).await.unwrap();
        for (id, text) in [
            ("email", "browser@dev.example"),
            ("password", "correct horse"),
            ("again", "correct horse"),
        ] {
            browser
                .find(Locator::Id(id))
                .await
                .unwrap()
                .send_keys(text)
                .await
                .unwrap();
        }
        browser
            .find(Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        // The next page, once the browser has it.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let heading = match browser.find(Locator::Css("h1")).await {
                Ok(h) => h.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if heading == "Check your mail" {
                break;
            }
            assert!(Instant::now() < deadline, "the page says {heading:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let code = super::smtp::code_in(&t.smtp.wait_for_message("browser@dev.example", 1));
        browser
            .find(Locator::Id("code"))
            .await
            .unwrap()
            .send_keys(&code)
            .await
            .unwrap();
        browser
            .find(Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();

        // Sent on to the Checkout Session made for this sign-up (the click returns before
        // the browser has followed the form's answer: wait for it).
        let deadline = Instant::now() + Duration::from_secs(60);
        let sessions = loop {
            let landed = browser.current_url().await.unwrap();
            let sessions = t.stripe.sessions();
            if sessions.first().is_some_and(|s| landed.as_str() == s.url) {
                break sessions;
            }
            assert!(Instant::now() < deadline, "stayed on {landed}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].form["customer_email"], "browser@dev.example");
        let heading = browser
            .find(Locator::Id("checkout"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(heading, format!("Pay for {}", sessions[0].id));
        browser.close().await.unwrap();
    });
}
