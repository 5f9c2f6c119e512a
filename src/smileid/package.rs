//! The upload zip: `info.json` first, then every file-type image under its `file_name`
//! (protocol §4). Base64 types stay inline in info.json. Built from the prep_upload answer,
//! so it is made at send time, never at capture time.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::job::{ImageType, Job, PartnerParams};
use super::signature::Signed;
use super::wire::{PrepUploadResponse, ZIP_NAME};

/// One `images[]` entry of info.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfoImage {
    pub image_type_id: ImageType,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub file_name: String,
}

/// `info.json`, server-SDK form ("apiVersion 2.0.0").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfoJson {
    pub package_information: Value,
    pub misc_information: MiscInformation,
    /// Raw JSON: the official SDKs disagree on types here (`entered` is a bool or `"true"`).
    #[serde(default)]
    pub id_info: Value,
    pub images: Vec<InfoImage>,
    /// The whole prep_upload response object (the JS/Ruby form; Python puts only the URL string).
    #[serde(default)]
    pub server_information: Value,
    /// The person's consent, in the mobile SDKs' form; omitted when not recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_information: Option<crate::smileid::job::ConsentInformation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MiscInformation {
    pub timestamp: String,
    #[serde(default)]
    pub signature: String,
    /// A string, `"true"`/`"false"`, as every server SDK writes it.
    pub retry: String,
    pub partner_params: PartnerParams,
    #[serde(default)]
    pub file_name: String,
    #[serde(default)]
    pub smile_client_id: String,
    #[serde(default)]
    pub callback_url: Option<String>,
    #[serde(rename = "userData", default)]
    pub user_data: Value,
}

/// Errors while building or reading an upload zip.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("could not write the upload zip: {0}")]
    Write(String),
    #[error("the upload zip is unreadable: {0}; rebuild the job bundle")]
    Zip(String),
    #[error("the upload zip has no info.json; it was not made by a Smile ID client")]
    NoInfoJson,
    #[error("info.json is not valid: {0}")]
    InfoJson(String),
    #[error("info.json lists {0:?} but the zip has no such entry")]
    MissingFile(String),
}

/// info.json for a prepared job; `signed` is the pair that signed the prep_upload.
pub fn info_json(job: &Job, partner_id: &str, signed: &Signed, retry: bool, prep: &PrepUploadResponse) -> InfoJson {
    let images = job
        .images
        .iter()
        .map(|img| {
            if img.image_type.is_file() {
                InfoImage { image_type_id: img.image_type, image: String::new(), file_name: img.file_name.clone() }
            } else {
                InfoImage { image_type_id: img.image_type, image: B64.encode(&img.jpeg), file_name: String::new() }
            }
        })
        .collect();
    InfoJson {
        package_information: json!({"apiVersion": {"buildNumber": 0, "majorVersion": 2, "minorVersion": 0}, "language": "rust"}),
        misc_information: MiscInformation {
            timestamp: signed.timestamp.clone(),
            signature: signed.signature.clone(),
            retry: retry.to_string(),
            partner_params: job.partner_params.clone(),
            file_name: ZIP_NAME.into(),
            smile_client_id: partner_id.into(),
            callback_url: job.options.callback_url.clone(),
            // Legacy constant block every server SDK sends; the server ignores its content.
            user_data: json!({"isVerifiedProcess": false, "name": "", "fbUserID": "", "firstName": "", "lastName": "",
                              "gender": "", "email": "", "phone": "", "countryCode": "+", "countryName": ""}),
        },
        id_info: serde_json::to_value(&job.id_info).unwrap_or(Value::Null),
        images,
        server_information: serde_json::to_value(prep).unwrap_or(Value::Null),
        consent_information: job.consent.clone(),
    }
}

/// The zip bytes: DEFLATE, `info.json` first, then the file-type images in job order.
pub fn build_zip(info: &InfoJson, job: &Job) -> Result<Vec<u8>, PackageError> {
    let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let w = |e: &dyn std::fmt::Display| PackageError::Write(e.to_string());
    let info_bytes = serde_json::to_vec(info).map_err(|e| w(&e))?;
    zw.start_file("info.json", opts).map_err(|e| w(&e))?;
    zw.write_all(&info_bytes).map_err(|e| w(&e))?;
    for img in job.images.iter().filter(|i| i.image_type.is_file()) {
        // JPEG does not deflate; storing it saves CPU on a Pi for the same bytes on the wire.
        let o = opts.compression_method(zip::CompressionMethod::Stored);
        zw.start_file(img.file_name.as_str(), o).map_err(|e| w(&e))?;
        zw.write_all(&img.jpeg).map_err(|e| w(&e))?;
    }
    Ok(zw.finish().map_err(|e| w(&e))?.into_inner())
}

/// A zip as read back: info.json and every other entry by name.
#[derive(Debug)]
pub struct ReadPackage {
    pub info: InfoJson,
    pub entries: BTreeMap<String, Vec<u8>>,
}

/// Reads an upload zip, with limits, and checks that every listed file is present.
pub fn read_zip(bytes: &[u8], max_entry_bytes: u64) -> Result<ReadPackage, PackageError> {
    let mut za = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| PackageError::Zip(e.to_string()))?;
    let mut entries = BTreeMap::new();
    for i in 0..za.len() {
        let f = za.by_index(i).map_err(|e| PackageError::Zip(e.to_string()))?;
        if f.is_dir() {
            continue;
        }
        let name = f.name().to_string();
        let mut buf = Vec::new();
        f.take(max_entry_bytes + 1).read_to_end(&mut buf).map_err(|e| PackageError::Zip(format!("{name}: {e}")))?;
        if buf.len() as u64 > max_entry_bytes {
            return Err(PackageError::Zip(format!("entry {name} is larger than {max_entry_bytes} bytes")));
        }
        entries.insert(name, buf);
    }
    let raw = entries.remove("info.json").ok_or(PackageError::NoInfoJson)?;
    let info: InfoJson = serde_json::from_slice(&raw).map_err(|e| PackageError::InfoJson(e.to_string()))?;
    for img in &info.images {
        if img.image_type_id.is_file() && !img.file_name.is_empty() && !entries.contains_key(&img.file_name) {
            return Err(PackageError::MissingFile(img.file_name.clone()));
        }
    }
    Ok(ReadPackage { info, entries })
}
