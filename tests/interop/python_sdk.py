"""Submits jobs to the kiosk-agent sandbox with the official Python SDK (PyPI smile-id-core).

Usage: python_sdk.py BASE_URL PARTNER_ID API_KEY_FILE IMAGES_DIR RUN_TAG
Prints one JSON object per job: {"name", "job_id", "response"} (or "error").
The CA of the sandbox must be in REQUESTS_CA_BUNDLE.
"""
import base64
import json
import os
import sys

from smile_id_core import WebApi

base_url, partner_id, key_file, images, tag = sys.argv[1:6]
api_key = open(key_file).read().strip()
api = WebApi(partner_id, "https://partner.example.com/smile/callback", api_key, base_url)
opts = {"return_job_status": True, "return_history": False, "return_images": False, "use_enrolled_image": False}


def path(name):
    return os.path.join(images, name)


def b64(name):
    return base64.b64encode(open(path(name), "rb").read()).decode()


person = {"first_name": "Ada", "last_name": "Obi", "country": "NG", "id_type": "NIN_V2",
          "id_number": "00000000000", "dob": "1990-01-01", "entered": True}
liveness = [f"liveness_{i}.jpg" for i in range(8)]
jobs = [
    ("bkyc_files", 1, [{"image_type_id": 0, "file_name": path("selfie.jpg")}]
     + [{"image_type_id": 4, "file_name": path(n)} for n in liveness], person),
    ("bkyc_base64", 1, [{"image_type_id": 2, "image": b64("selfie.jpg")}]
     + [{"image_type_id": 6, "image": b64(n)} for n in liveness], person),
    ("document_verification", 6, [{"image_type_id": 0, "file_name": path("selfie.jpg")},
                                   {"image_type_id": 1, "file_name": path("id_front.jpg")},
                                   {"image_type_id": 5, "file_name": path("id_back.jpg")}],
     {"country": "NG", "id_type": "PASSPORT"}),
    ("smartselfie_enrollment", 4, [{"image_type_id": 0, "file_name": path("selfie.jpg")}]
     + [{"image_type_id": 4, "file_name": path(n)} for n in liveness], {}),
    ("smartselfie_authentication", 2, [{"image_type_id": 0, "file_name": path("selfie.jpg")}]
     + [{"image_type_id": 4, "file_name": path(n)} for n in liveness], {}),
]
for name, job_type, imgs, id_info in jobs:
    pp = {"user_id": f"py-user-{tag}", "job_id": f"py-{name}-{tag}", "job_type": job_type}
    try:
        resp = api.submit_job(pp, imgs, dict(id_info), dict(opts))
        print(json.dumps({"name": name, "job_id": pp["job_id"], "response": resp}), flush=True)
    except Exception as e:  # reported to the Rust test, which fails on it
        print(json.dumps({"name": name, "job_id": pp["job_id"], "error": f"{type(e).__name__}: {e}"}), flush=True)
