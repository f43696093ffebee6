//! `dgc agent create|list|show|delete`.

use std::process::ExitCode;

use anyhow::Context;
use reqwest::Method;
use serde_json::{Value, json};

use super::s;
use crate::cli::AgentCmd;
use crate::client::Client;

pub async fn run(c: Client, cmd: AgentCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AgentCmd::Create {
            name,
            description,
            config,
        } => {
            let mut body = json!({ "name": name });
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            if let Some(cfg) = config {
                let text = match cfg.strip_prefix('@') {
                    Some(path) => {
                        std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?
                    }
                    None => cfg,
                };
                let v: Value = serde_json::from_str(&text).context("--config is not valid JSON")?;
                body["config"] = v;
            }
            let v = c.call(Method::POST, "/v1/agents", &[], Some(body)).await?;
            if c.json {
                Client::print_json(&v);
            } else {
                println!("{}", s(&v["id"]));
            }
        }
        AgentCmd::List { skill } => {
            let extra: Vec<(&str, String)> = skill.iter().map(|sk| ("skill", sk.clone())).collect();
            let rows = c.list_all("/v1/agents", &extra).await?;
            if c.json {
                Client::print_json(&json!(rows));
            } else {
                println!("{:<30} {:<24} {:<8} CREATED", "ID", "NAME", "STATUS");
                for a in rows {
                    println!(
                        "{:<30} {:<24} {:<8} {}",
                        s(&a["id"]),
                        s(&a["name"]),
                        s(&a["status"]),
                        s(&a["created_at"])
                    );
                }
            }
        }
        AgentCmd::Show { agent_id } => {
            let v = c
                .call(Method::GET, &format!("/v1/agents/{agent_id}"), &[], None)
                .await?;
            Client::print_json(&v);
        }
        AgentCmd::Delete { agent_id } => {
            let v = c
                .call(Method::DELETE, &format!("/v1/agents/{agent_id}"), &[], None)
                .await?;
            if c.json {
                Client::print_json(&v);
            } else {
                println!("deleted {agent_id} and {} memories", v["memories_deleted"]);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
