//! `dgc memory add|search|list|show|delete`.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use reqwest::Method;
use serde_json::{Value, json};

use super::s;
use crate::cli::MemoryCmd;
use crate::client::Client;

fn print_rows(rows: &[Value], with_score: bool) {
    for m in rows {
        let content = s(&m["content"]).replace('\n', " ");
        let short: String = content.chars().take(80).collect();
        let ell = if content.chars().count() > 80 {
            "…"
        } else {
            ""
        };
        if with_score {
            println!(
                "{}  {:>9.4}  {:<10} {short}{ell}",
                s(&m["id"]),
                m["score"].as_f64().unwrap_or(0.0),
                s(&m["kind"])
            );
        } else {
            println!("{}  {:<10} {short}{ell}", s(&m["id"]), s(&m["kind"]));
        }
    }
}

pub async fn run(c: Client, cmd: MemoryCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        MemoryCmd::Add {
            agent_id,
            content,
            kind,
            tags,
            links,
            metadata,
        } => {
            let content = if content == "-" {
                let mut buf = String::new();
                std::io::stdin()
                    .read_to_string(&mut buf)
                    .context("reading content from stdin")?;
                buf
            } else {
                content
            };
            let mut body = json!({ "content": content, "tags": tags, "links": links });
            if let Some(k) = kind {
                body["kind"] = json!(k);
            }
            if let Some(m) = metadata {
                body["metadata"] =
                    serde_json::from_str(&m).context("--metadata is not valid JSON")?;
            }
            let v = c
                .call(
                    Method::POST,
                    &format!("/v1/agents/{agent_id}/memory"),
                    &[],
                    Some(body),
                )
                .await?;
            if c.json {
                Client::print_json(&v);
            } else {
                println!("{}", s(&v["id"]));
            }
        }
        MemoryCmd::Search {
            agent_id,
            query,
            limit,
            kind,
            tag,
        } => {
            let mut q = vec![("q", query), ("limit", limit.to_string())];
            if let Some(k) = kind {
                q.push(("kind", k));
            }
            if let Some(t) = tag {
                q.push(("tag", t));
            }
            let v = c
                .call(
                    Method::GET,
                    &format!("/v1/agents/{agent_id}/memory"),
                    &q,
                    None,
                )
                .await?;
            if c.json {
                Client::print_json(&v);
            } else {
                print_rows(v["data"].as_array().map_or(&[][..], Vec::as_slice), true);
            }
        }
        MemoryCmd::List { agent_id, limit } => {
            let v = c
                .call(
                    Method::GET,
                    &format!("/v1/agents/{agent_id}/memory"),
                    &[("limit", limit.to_string())],
                    None,
                )
                .await?;
            if c.json {
                Client::print_json(&v);
            } else {
                print_rows(v["data"].as_array().map_or(&[][..], Vec::as_slice), false);
            }
        }
        MemoryCmd::Show {
            agent_id,
            memory_id,
        } => {
            let v = c
                .call(
                    Method::GET,
                    &format!("/v1/agents/{agent_id}/memory/{memory_id}"),
                    &[],
                    None,
                )
                .await?;
            Client::print_json(&v);
        }
        MemoryCmd::Delete {
            agent_id,
            memory_id,
        } => {
            c.call(
                Method::DELETE,
                &format!("/v1/agents/{agent_id}/memory/{memory_id}"),
                &[],
                None,
            )
            .await?;
            if !c.json {
                println!("deleted {memory_id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
