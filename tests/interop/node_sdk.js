// Submits jobs to the kiosk-agent sandbox with the official Node SDK (npm smile-identity-core).
// Usage: node node_sdk.js BASE_URL PARTNER_ID API_KEY_FILE IMAGES_DIR RUN_TAG
// Prints one JSON object per job: {name, job_id, response} or {name, job_id, error}.
// The sandbox CA must be in NODE_EXTRA_CA_CERTS.
const fs = require('fs');
const path = require('path');
const { WebApi } = require('smile-identity-core');

const [baseUrl, partnerId, keyFile, images, tag] = process.argv.slice(2);
const apiKey = fs.readFileSync(keyFile, 'utf8').trim();
const api = new WebApi(partnerId, 'https://partner.example.com/smile/callback', apiKey, baseUrl);
const opts = { return_job_status: true, return_history: false, return_images: false, use_enrolled_image: false };
const p = (n) => path.join(images, n);
const b64 = (n) => fs.readFileSync(p(n)).toString('base64');
const liveness = [...Array(8).keys()].map((i) => `liveness_${i}.jpg`);
const person = { first_name: 'Ada', last_name: 'Obi', country: 'NG', id_type: 'NIN_V2', id_number: '00000000000', dob: '1990-01-01', entered: 'true' };

const jobs = [
  // Node 3.2.1 zips only types 0/1: its type-4 liveness paths never reach the server (protocol spec §4).
  ['bkyc_files', 1, [{ image_type_id: 0, image: p('selfie.jpg') }, ...liveness.map((n) => ({ image_type_id: 4, image: p(n) }))], person],
  ['bkyc_base64', 1, [{ image_type_id: 2, image: b64('selfie.jpg') }, ...liveness.map((n) => ({ image_type_id: 6, image: b64(n) }))], person],
  ['document_verification', 6, [{ image_type_id: 0, image: p('selfie.jpg') }, { image_type_id: 1, image: p('id_front.jpg') }, { image_type_id: 7, image: b64('id_back.jpg') }], { country: 'NG', id_type: 'PASSPORT' }],
  ['smartselfie_enrollment', 4, [{ image_type_id: 2, image: b64('selfie.jpg') }, ...liveness.map((n) => ({ image_type_id: 6, image: b64(n) }))], {}],
];

(async () => {
  for (const [name, jobType, imgs, idInfo] of jobs) {
    const pp = { user_id: `node-user-${tag}`, job_id: `node-${name}-${tag}`, job_type: jobType };
    try {
      const response = await api.submit_job(pp, imgs, idInfo, opts);
      console.log(JSON.stringify({ name, job_id: pp.job_id, response }));
    } catch (e) {
      console.log(JSON.stringify({ name, job_id: pp.job_id, error: String(e && e.message ? e.message : e) }));
    }
  }
})();
