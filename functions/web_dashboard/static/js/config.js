// The configuration the dashboard function put in the page shell (as data, not script).
const meta = document.querySelector('meta[name="promptopt-config"]');
export const config = JSON.parse(meta ? meta.content : "{}");
