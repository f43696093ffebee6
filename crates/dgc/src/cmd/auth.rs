//! `dgc auth issue|list|revoke`.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::json;

use super::s;
use crate::cli::AuthCmd;
use crate::client::Client;

pub async fn run(c: Client, cmd: AuthCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AuthCmd::Issue {
            capabilities,
            expires,
            name,
            agents,
        } => {
            let caps: Vec<&str> = capabilities
                .split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .collect();
            let mut body = json!({ "capabilities": caps });
            if let Some(e) = expires {
                body["expires_in"] = json!(e);
            }
            if let Some(n) = name {
                body["name"] = json!(n);
            }
            if !agents.is_empty() {
                body["agent_ids"] = json!(agents);
            }
            let v = c.call(Method::POST, "/v1/keys", &[], Some(body)).await?;
            if c.json {
                Client::print_json(&v);
            } else {
                eprintln!(
                    "issued {} with [{}], expires {} — the secret below is shown only once:",
                    s(&v["id"]),
                    v["capabilities"]
                        .as_array()
                        .map(|a| a
                            .iter()
                            .map(|x| s(x).to_string())
                            .collect::<Vec<_>>()
                            .join(", "))
                        .unwrap_or_default(),
                    v["expires_at"].as_str().unwrap_or("never")
                );
                println!("{}", s(&v["key"]));
            }
        }
        AuthCmd::List => {
            let rows = c.list_all("/v1/keys", &[]).await?;
            if c.json {
                Client::print_json(&json!(rows));
            } else {
                println!(
                    "{:<31} {:<20} {:<25} {:<9} CAPABILITIES",
                    "ID", "NAME", "EXPIRES", "STATUS"
                );
                for k in rows {
                    let status = if k["revoked_at"].is_string() {
                        "revoked"
                    } else {
                        "active"
                    };
                    let caps: Vec<String> = k["capabilities"]
                        .as_array()
                        .map(|a| a.iter().map(|x| s(x).to_string()).collect())
                        .unwrap_or_default();
                    println!(
                        "{:<31} {:<20} {:<25} {:<9} {}",
                        s(&k["id"]),
                        k["name"].as_str().unwrap_or(""),
                        k["expires_at"].as_str().unwrap_or("never"),
                        status,
                        caps.join(",")
                    );
                }
            }
        }
        AuthCmd::Revoke { key_id } => {
            let v = c
                .call(Method::DELETE, &format!("/v1/keys/{key_id}"), &[], None)
                .await?;
            if c.json {
                Client::print_json(&v);
            } else {
                let n = v["revoked"].as_array().map_or(0, Vec::len);
                println!("revoked {key_id} ({n} key(s) including those minted from it)");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
