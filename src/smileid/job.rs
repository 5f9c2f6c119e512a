//! What a job is, independent of the wire: partner params, ID info, options and images.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Smile ID job types the agent submits (protocol §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobType {
    BiometricKyc = 1,
    SmartSelfieAuthentication = 2,
    SmartSelfieEnrollment = 4,
    EnhancedKyc = 5,
    DocumentVerification = 6,
    EnhancedDocumentVerification = 11,
}

impl JobType {
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            1 => Self::BiometricKyc,
            2 => Self::SmartSelfieAuthentication,
            4 => Self::SmartSelfieEnrollment,
            5 => Self::EnhancedKyc,
            6 => Self::DocumentVerification,
            11 => Self::EnhancedDocumentVerification,
            _ => return None,
        })
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    /// Jobs 6 and 11 verify a document and need an ID front image.
    pub fn is_document(self) -> bool {
        matches!(self, Self::DocumentVerification | Self::EnhancedDocumentVerification)
    }

    /// Job 5 goes through the synchronous `/v1/id_verification` and carries no images.
    pub fn has_images(self) -> bool {
        self != Self::EnhancedKyc
    }
}

impl Serialize for JobType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for JobType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = i64::deserialize(d)?;
        JobType::from_code(code).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown job_type {code}; expected one of 1, 2, 4, 5, 6, 11"))
        })
    }
}

/// `image_type_id` values (protocol §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageType {
    SelfieFile = 0,
    IdFrontFile = 1,
    SelfieBase64 = 2,
    IdFrontBase64 = 3,
    LivenessFile = 4,
    IdBackFile = 5,
    LivenessBase64 = 6,
    IdBackBase64 = 7,
}

impl ImageType {
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => Self::SelfieFile,
            1 => Self::IdFrontFile,
            2 => Self::SelfieBase64,
            3 => Self::IdFrontBase64,
            4 => Self::LivenessFile,
            5 => Self::IdBackFile,
            6 => Self::LivenessBase64,
            7 => Self::IdBackBase64,
            _ => return None,
        })
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    /// File types travel as zip entries; the others inline as base64 in info.json.
    pub fn is_file(self) -> bool {
        matches!(self, Self::SelfieFile | Self::IdFrontFile | Self::LivenessFile | Self::IdBackFile)
    }

    pub fn is_selfie(self) -> bool {
        matches!(self, Self::SelfieFile | Self::SelfieBase64)
    }

    pub fn is_id_front(self) -> bool {
        matches!(self, Self::IdFrontFile | Self::IdFrontBase64)
    }
}

impl Serialize for ImageType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for ImageType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Android's Moshi writes the id as a string ("4"); the server SDKs as a number.
        let code = match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => n.as_i64().unwrap_or(-1),
            serde_json::Value::String(s) => s.parse().unwrap_or(-1),
            other => return Err(serde::de::Error::custom(format!("image_type_id must be a number, got {other}"))),
        };
        ImageType::from_code(code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown image_type_id {code}; expected 0 to 7")))
    }
}

/// `partner_params`: the three required keys plus any extra partner keys (strings), echoed in results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartnerParams {
    pub user_id: String,
    pub job_id: String,
    pub job_type: JobType,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `id_info`: the ID details the person entered or the host application supplied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dob: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// `true`: verify these details against the ID authority (Biometric KYC). Sent as a JSON bool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entered: Option<bool>,
}

impl IdInfo {
    pub fn is_empty(&self) -> bool {
        *self == IdInfo::default()
    }
}

/// Per-job options of the v1 flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOptions {
    /// Poll job_status after the upload (a kiosk cannot receive callbacks, so the agent defaults to true).
    pub return_job_status: bool,
    pub return_history: bool,
    pub return_image_links: bool,
    pub use_enrolled_image: bool,
    /// Where Smile ID posts the final result: normally the partner's backend.
    pub callback_url: Option<String>,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            return_job_status: true,
            return_history: false,
            return_image_links: false,
            use_enrolled_image: false,
            callback_url: None,
        }
    }
}

/// One captured image, always JPEG bytes; `file_name` is the zip entry name for file types.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct JobImage {
    pub image_type: ImageType,
    pub file_name: String,
    #[serde(with = "b64_bytes")]
    pub jpeg: Vec<u8>,
}

impl std::fmt::Debug for JobImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Image bytes are PII and large: never dump them.
        write!(f, "JobImage({:?}, {:?}, {} bytes)", self.image_type, self.file_name, self.jpeg.len())
    }
}

/// The person's consent, as Smile ID's mobile SDKs send it in info.json (`consent_information`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentInformation {
    pub consented: Consented,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consented {
    /// ISO 8601 UTC time the person agreed.
    pub consent_granted_date: String,
    pub personal_details: bool,
    pub contact_information: bool,
    pub document_information: bool,
}

/// One `{name, value}` entry of prep_upload's `metadata` (as the mobile SDKs send it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadatum {
    pub name: String,
    pub value: serde_json::Value,
}

/// Everything needed to submit one job; the `job_id` is fixed when the job is captured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub partner_params: PartnerParams,
    pub id_info: IdInfo,
    pub options: JobOptions,
    pub images: Vec<JobImage>,
    /// Recorded by the kiosk's consent screen; sent in info.json.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<ConsentInformation>,
    /// Capture facts (retries, timings, device) sent with prep_upload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<Metadatum>,
}

mod b64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}
