//! First start and every start after it: the master key file, the instance's identity (id and
//! Ed25519 key, sealed in the store) and, once, the bootstrap admin key written to
//! `<data-dir>/admin.key` (mode 0600). The admin secret is never logged.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use dgc_store::{KeyRecord, Store, StoreError};
use dgc_types::key::KeyInfo;
use dgc_types::{CapabilitySet, KeyId};
use ed25519_dalek::SigningKey;

use crate::audit::AuditIdentity;
use crate::crypto::{self, CryptoError, INSTANCE_KEY_PURPOSE, MasterKey};
use crate::keys::{generate_secret, hash_secret};

pub const MASTER_KEY_FILE: &str = "master.key";
pub const ADMIN_KEY_FILE: &str = "admin.key";
const META_INSTANCE_ID: &str = "instance.id";
const META_INSTANCE_KEY: &str = "instance.signing_key";
const META_ADMIN_DONE: &str = "bootstrap.admin_key";

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the master key {path} cannot decrypt this database's instance identity; this data directory was \
         initialised with a different master key (restore the right master.key file). Nothing was changed."
    )]
    WrongMasterKey { path: String },
    #[error("the instance id cannot name an audit log: {0}")]
    AuditIdentity(String),
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// This instance's identity and secrets.
pub struct Instance {
    /// Stable instance id (`inst_…`), the audit log origin's suffix.
    pub id: String,
    pub signing_key: SigningKey,
    pub master: MasterKey,
    /// The audit log's origin, log handle and the instance's record-signing key.
    pub audit: AuditIdentity,
    /// Set on the start that created the admin key.
    pub admin_key_path: Option<PathBuf>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Instance {
    /// Base64 of the instance's Ed25519 public key.
    pub fn public_key_b64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .encode(self.signing_key.verifying_key().as_bytes())
    }
}

/// Loads or creates the instance identity and, on first start, the admin key.
pub async fn bootstrap(data_dir: &Path, store: &dyn Store) -> Result<Instance, BootstrapError> {
    let master_path = data_dir.join(MASTER_KEY_FILE);
    let (master, _created) = MasterKey::load_or_create(&master_path)?;

    let fresh_id = format!("inst_{}", dgc_types::ids::new_ulid_body());
    let id = String::from_utf8(
        store
            .meta_get_or_insert(META_INSTANCE_ID, fresh_id.into_bytes())
            .await?,
    )
    .map_err(|e| StoreError::Backend(format!("instance id is not UTF-8: {e}")))?;

    let (candidate, _) = crypto::new_identity();
    let sealed = store
        .meta_get_or_insert(
            META_INSTANCE_KEY,
            crypto::seal_signing_key(&master, &candidate, INSTANCE_KEY_PURPOSE),
        )
        .await?;
    let signing_key =
        crypto::open_signing_key(&master, &sealed, INSTANCE_KEY_PURPOSE).map_err(|e| match e {
            CryptoError::Decrypt => BootstrapError::WrongMasterKey {
                path: master_path.display().to_string(),
            },
            e => e.into(),
        })?;

    // The audit log signs with the instance key; every audited write from here on (the admin key
    // included) is recorded, and fails if it cannot be.
    let audit = AuditIdentity::new(&id, &signing_key)
        .map_err(|e| BootstrapError::AuditIdentity(e.to_string()))?;
    store.set_auditor(audit.auditor());
    store.audit_init(&id).await?;

    let mut admin_key_path = None;
    if store.meta_get(META_ADMIN_DONE).await?.is_none() {
        let secret = generate_secret();
        let path = data_dir.join(ADMIN_KEY_FILE);
        write_secret_file(&path, &secret)?;
        let info = KeyInfo {
            id: KeyId::generate(),
            name: Some("admin (bootstrap)".into()),
            capabilities: CapabilitySet::all(),
            agent_ids: None,
            parent_id: None,
            created_at: dgc_types::now(),
            expires_at: None,
            revoked_at: None,
        };
        let record = crate::audit::key_issued(&info, "bootstrap");
        store
            .insert_key(
                KeyRecord {
                    info,
                    secret_hash: hash_secret(&secret),
                },
                vec![record],
            )
            .await?;
        store
            .meta_get_or_insert(META_ADMIN_DONE, b"1".to_vec())
            .await?;
        admin_key_path = Some(path);
    }
    Ok(Instance {
        id,
        signing_key,
        master,
        audit,
        admin_key_path,
    })
}

/// The instance id and its audit verifier key, read offline from a data directory (its database
/// and master key), without starting a server or writing anything: the trust anchor for
/// `dgc audit verify --data-dir`.
pub fn read_instance_verifier(
    data_dir: &Path,
    meta: impl Fn(&str) -> Result<Option<Vec<u8>>, StoreError>,
) -> Result<(String, dgc_audit::VerifierKey), BootstrapError> {
    let master_path = data_dir.join(MASTER_KEY_FILE);
    if !master_path.exists() {
        return Err(BootstrapError::Io {
            path: master_path.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no master key; pass --vkey instead",
            ),
        });
    }
    let (master, _) = MasterKey::load_or_create(&master_path)?;
    let id = meta(META_INSTANCE_ID)?
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| StoreError::Backend("the database has no instance id".into()))?;
    let sealed = meta(META_INSTANCE_KEY)?
        .ok_or_else(|| StoreError::Backend("the database has no instance key".into()))?;
    let sk =
        crypto::open_signing_key(&master, &sealed, INSTANCE_KEY_PURPOSE).map_err(|e| match e {
            CryptoError::Decrypt => BootstrapError::WrongMasterKey {
                path: master_path.display().to_string(),
            },
            e => e.into(),
        })?;
    let audit =
        AuditIdentity::new(&id, &sk).map_err(|e| BootstrapError::AuditIdentity(e.to_string()))?;
    Ok((id, audit.signer.verifier().clone()))
}

/// Writes a secret to a new 0600 file atomically (temp file + rename).
fn write_secret_file(path: &Path, secret: &str) -> Result<(), BootstrapError> {
    let tmp = path.with_extension("tmp");
    let io = |e| BootstrapError::Io {
        path: path.display().to_string(),
        source: e,
    };
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(format!("{secret}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}
