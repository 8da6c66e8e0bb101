// sdk-test.mjs: drives berthd with the Azure SDK for JavaScript
// (@azure/arm-containerinstance), the way an Azure user would drive Azure
// Container Instances, and checks every answer the SDK hands back.
//
//   node sdk-test.mjs BASE_URL TOKEN SUBSCRIPTION
//
// BASE_URL is berthd's https://HOST:PORT (its certificate trusted through
// NODE_EXTRA_CA_CERTS), TOKEN a bearer token berthd accepts for
// SUBSCRIPTION.  Prints one line per step ("ok N - ..." or "not ok N - ...")
// and a closing "N passed, N failed" line; stops at the first failure,
// printing the error and the HTTP exchange at fault, and exits 1.
// BERTH_SDK_TRACE=1 prints every HTTP exchange as it happens.
// tests/test_sdk.sh runs it against a berthd and a simulated agent.

import { ContainerInstanceManagementClient } from "@azure/arm-containerinstance";

const [baseUrl, token, subscriptionId] = process.argv.slice(2);
if (!baseUrl || !token || !subscriptionId) {
    console.error("usage: node sdk-test.mjs BASE_URL TOKEN SUBSCRIPTION");
    process.exit(2);
}

const RG = "berth-sdk-rg";
const NAME = "sdk-demo";
const SECRET = "sdk-secret-value";
const OTHER_SUBSCRIPTION = "00000000-0000-0000-0000-0000000000ff";
const TRACE = process.env.BERTH_SDK_TRACE === "1";  // print every exchange
const CALL_MS = 30_000;     // bound on one SDK call (LROs included)
const WAIT_MS = 30_000;     // bound on waiting for a state
const TOTAL_MS = 240_000;   // bound on the whole run

// ---- an HTTP log: every exchange the SDK makes, to print at a failure ----

const exchanges = [];
const recorder = {
    name: "berthSdkTestRecorder",
    async sendRequest(request, next) {
        const entry = {
            method: request.method,
            url: request.url,
            requestHeaders: redact(request.headers.toJSON()),
            requestBody: typeof request.body === "string" ? request.body : undefined,
        };
        exchanges.push(entry);
        if (exchanges.length > 50) exchanges.shift();
        try {
            const response = await next(request);
            entry.status = response.status;
            entry.responseHeaders = response.headers.toJSON();
            entry.responseBody = response.bodyAsText;
            if (TRACE) console.log(formatExchange(entry));
            return response;
        } catch (e) {
            entry.error = String(e && e.message ? e.message : e);
            if (TRACE) console.log(formatExchange(entry));
            throw e;
        }
    },
};

function redact(headers) {
    const h = { ...headers };
    for (const k of Object.keys(h)) {
        if (k.toLowerCase() === "authorization") h[k] = h[k].replace(/ .*/, " <redacted>");
    }
    return h;
}

function formatExchange(x) {
    const lines = [`  > ${x.method} ${x.url}`];
    for (const [k, v] of Object.entries(x.requestHeaders || {})) lines.push(`  > ${k}: ${v}`);
    if (x.requestBody) lines.push(`  > ${x.requestBody}`);
    if (x.error) lines.push(`  < (no response: ${x.error})`);
    if (x.status !== undefined) {
        lines.push(`  < HTTP ${x.status}`);
        for (const [k, v] of Object.entries(x.responseHeaders || {})) lines.push(`  < ${k}: ${v}`);
        if (x.responseBody) lines.push(`  < ${x.responseBody}`);
    }
    return lines.join("\n");
}

// ---- clients ------------------------------------------------------------

function credentialFor(tok) {
    return { getToken: async () => ({ token: tok, expiresOnTimestamp: Date.now() + 3600e3 }) };
}

function clientFor(tok, sub) {
    return new ContainerInstanceManagementClient(credentialFor(tok), sub, {
        // $host builds the URLs, endpoint is the base the credential scope
        // derives from; both must point at berthd.
        $host: baseUrl,
        endpoint: baseUrl,
        credentialScopes: [`${baseUrl}/.default`],
        // Few, quick retries: a retried 5xx would only hide what berthd said.
        retryOptions: { maxRetries: 1, retryDelayInMs: 200, maxRetryDelayInMs: 1000 },
        additionalPolicies: [{ policy: recorder, position: "perRetry" }],
    });
}

const client = clientFor(token, subscriptionId);

// Poll faster than the SDK's 2 s default (a Retry-After header still wins).
const lro = () => ({ updateIntervalInMs: 200, abortSignal: AbortSignal.timeout(CALL_MS) });
const call = () => ({ abortSignal: AbortSignal.timeout(CALL_MS) });

// ---- steps --------------------------------------------------------------

let passed = 0;
let failed = 0;
let stepNo = 0;

class CheckError extends Error {}

function check(cond, what) {
    if (!cond) throw new CheckError(what);
}

async function step(name, fn) {
    stepNo++;
    const mark = exchanges.length;
    const t0 = Date.now();
    try {
        const note = await fn();
        passed++;
        console.log(`ok ${stepNo} - ${name} (${Date.now() - t0} ms)${note ? ": " + note : ""}`);
    } catch (e) {
        failed++;
        console.log(`not ok ${stepNo} - ${name} (${Date.now() - t0} ms)`);
        report(e, exchanges.slice(mark));
        finish();
    }
}

function report(e, mine) {
    console.log(`  error: ${e && e.name ? e.name + ": " : ""}${e && e.message ? e.message : e}`);
    let atFault;
    if (e && e.name === "RestError") {
        console.log(`  RestError: statusCode=${e.statusCode} code=${e.code}`);
        if (e.request) {
            atFault = e.request.headers.get("x-ms-client-request-id");
            console.log("  the request at fault:");
            console.log(formatExchange({
                method: e.request.method,
                url: e.request.url,
                requestHeaders: redact(e.request.headers.toJSON()),
                requestBody: typeof e.request.body === "string" ? e.request.body : undefined,
                status: e.response ? e.response.status : undefined,
                responseHeaders: e.response ? e.response.headers.toJSON() : undefined,
                responseBody: e.response ? e.response.bodyAsText : undefined,
            }));
        }
    } else if (e && !(e instanceof CheckError) && e.stack) {
        console.log(e.stack.split("\n").slice(1, 6).join("\n"));
    }
    const others = mine.filter((x) => !atFault || x.requestHeaders["x-ms-client-request-id"] !== atFault);
    if (others.length > 0) {
        console.log(`  ${atFault ? "the step's other" : "the step's"} HTTP exchanges ` +
                    `(${others.length}, the last 6 shown):`);
        for (const x of others.slice(-6)) console.log(formatExchange(x));
    }
}

function finish() {
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(failed > 0 ? 1 : 0);
}

const watchdog = setTimeout(() => {
    console.log(`not ok - the run took longer than ${TOTAL_MS} ms`);
    failed++;
    finish();
}, TOTAL_MS);
watchdog.unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// GET the group until pred(group) holds; returns the group, or throws
// describing the last one seen.
async function waitFor(what, pred, ms = WAIT_MS) {
    const end = Date.now() + ms;
    let g;
    for (;;) {
        g = await client.containerGroups.get(RG, NAME, call());
        if (pred(g)) return g;
        if (Date.now() > end) break;
        await sleep(200);
    }
    throw new CheckError(`timed out after ${ms} ms waiting for ${what}; last GET: ` +
                         JSON.stringify(summary(g)));
}

function summary(g) {
    const c = g && g.containers && g.containers[0];
    return {
        provisioningState: g && g.provisioningState,
        state: g && g.instanceView && g.instanceView.state,
        container: c && c.instanceView ? {
            currentState: c.instanceView.currentState,
            restartCount: c.instanceView.restartCount,
        } : undefined,
    };
}

const containerState = (g) =>
    g.containers && g.containers[0] && g.containers[0].instanceView &&
    g.containers[0].instanceView.currentState && g.containers[0].instanceView.currentState.state;

function groupDoc(envA, cpu) {
    return {
        location: "westeurope",
        osType: "Linux",
        restartPolicy: "Always",
        containers: [{
            name: "app",
            image: "busybox:latest",
            resources: { requests: { cpu, memoryInGB: 1 } },
            environmentVariables: [
                { name: "A", value: envA },
                { name: "S", secureValue: SECRET },
            ],
            ports: [{ port: 80 }],
        }],
        ipAddress: { type: "Public", ports: [{ port: 80, protocol: "TCP" }], dnsNameLabel: "sdkdemo" },
    };
}

// The raw body of the last response the recorder saw for URL's path.
function lastBody(method, pathEnd) {
    for (let i = exchanges.length - 1; i >= 0; i--) {
        const x = exchanges[i];
        if (x.method === method && new URL(x.url).pathname.endsWith(pathEnd)) return x.responseBody;
    }
    return undefined;
}

async function expectRestError(promise, status) {
    try {
        await promise;
    } catch (e) {
        if (e && e.name === "RestError" && e.statusCode === status) return e;
        throw e;
    }
    throw new CheckError(`expected a RestError with statusCode ${status}, the call succeeded`);
}

async function collect(iter) {
    const all = [];
    for await (const x of iter) all.push(x);
    return all;
}

const groupPath = `/resourceGroups/${RG}/providers/Microsoft.ContainerInstance/containerGroups/${NAME}`;

console.log(`berthd at ${baseUrl}, subscription ${subscriptionId}`);

await step("containerGroups.beginCreateOrUpdateAndWait creates the group", async () => {
    const r = await client.containerGroups.beginCreateOrUpdateAndWait(RG, NAME, groupDoc("1", 1), lro());
    check(r.provisioningState === "Succeeded",
          `provisioningState is ${JSON.stringify(r.provisioningState)}, not "Succeeded"`);
    check(r.name === NAME, `name is ${JSON.stringify(r.name)}`);
    const put = lastBody("PUT", groupPath) || "";
    check(!put.includes(SECRET), "the PUT's answer holds the secure value");
    return `provisioningState ${r.provisioningState}`;
});

await step("containerGroups.get shows it running, with its FQDN and no secure value", async () => {
    const t0 = Date.now();
    const g = await waitFor("containers[0] Running", (x) => containerState(x) === "Running");
    check(g.name === NAME, `name is ${JSON.stringify(g.name)}`);
    check(g.id && g.id.toLowerCase().endsWith(groupPath.toLowerCase()), `id is ${JSON.stringify(g.id)}`);
    check(g.ipAddress && typeof g.ipAddress.fqdn === "string" && g.ipAddress.fqdn.startsWith("sdkdemo."),
          `ipAddress.fqdn is ${JSON.stringify(g.ipAddress && g.ipAddress.fqdn)}`);
    const raw = lastBody("GET", groupPath);
    check(typeof raw === "string" && raw.length > 0, "no raw body recorded for the GET");
    check(!raw.includes(SECRET), "the GET's body holds the secure value");
    check(!/"secureValue"\s*:\s*"[^"]/.test(raw), "the GET's body holds a non-empty secureValue");
    const env = g.containers[0].environmentVariables || [];
    const a = env.find((e) => e.name === "A");
    check(a && a.value === "1", `env A is ${JSON.stringify(a)}`);
    check(env.some((e) => e.name === "S"), "env S is missing from the GET");
    return `Running after ${Date.now() - t0} ms, fqdn ${g.ipAddress.fqdn}`;
});

await step("containerGroups.listByResourceGroup lists it", async () => {
    const all = await collect(client.containerGroups.listByResourceGroup(RG, call()));
    check(all.some((g) => g.name === NAME), `names: ${JSON.stringify(all.map((g) => g.name))}`);
    return `${all.length} group(s)`;
});

await step("containerGroups.list (subscription) lists it", async () => {
    const all = await collect(client.containerGroups.list(call()));
    check(all.some((g) => g.name === NAME), `names: ${JSON.stringify(all.map((g) => g.name))}`);
    return `${all.length} group(s)`;
});

await step("in-place update (env A=2) succeeds and the group keeps running", async () => {
    const r = await client.containerGroups.beginCreateOrUpdateAndWait(RG, NAME, groupDoc("2", 1), lro());
    check(r.provisioningState === "Succeeded",
          `provisioningState is ${JSON.stringify(r.provisioningState)}, not "Succeeded"`);
    const g = await waitFor("env A=2 and containers[0] Running", (x) => {
        const a = (x.containers[0].environmentVariables || []).find((e) => e.name === "A");
        return a && a.value === "2" && containerState(x) === "Running";
    });
    return `provisioningState ${r.provisioningState}, ${containerState(g)}`;
});

await step("a CPU change is refused with 409 naming the CPU", async () => {
    const e = await expectRestError(
        client.containerGroups.beginCreateOrUpdateAndWait(RG, NAME, groupDoc("2", 2), lro()), 409);
    check(/cpu/i.test(`${e.code} ${e.message}`), `code ${e.code}, message ${JSON.stringify(e.message)}`);
    const g = await client.containerGroups.get(RG, NAME, call());
    const cpu = g.containers[0].resources.requests.cpu;
    check(cpu === 1, `after the refusal the group asks for cpu ${cpu}, not 1`);
    return `code ${e.code}: ${e.message}`;
});

await step("containers.listLogs returns the log as a string", async () => {
    const r = await client.containers.listLogs(RG, NAME, "app", { tail: 10, ...call() });
    check(typeof r.content === "string", `content is ${JSON.stringify(r.content)}`);
    return `content ${JSON.stringify(r.content.length > 60 ? r.content.slice(0, 60) + "..." : r.content)}` +
           (r.content.includes("started") ? "" : " (no \"started\" in it)");
});

await step("containerGroups.beginRestartAndWait restarts the container", async () => {
    await client.containerGroups.beginRestartAndWait(RG, NAME, lro());
    const g = await waitFor("restartCount >= 1 and Running", (x) =>
        x.containers[0].instanceView && x.containers[0].instanceView.restartCount >= 1 &&
        containerState(x) === "Running");
    return `restartCount ${g.containers[0].instanceView.restartCount}`;
});

await step("containerGroups.stop stops the group", async () => {
    await client.containerGroups.stop(RG, NAME, call());
    const g = await waitFor('instanceView.state "Stopped"', (x) =>
        x.instanceView && x.instanceView.state === "Stopped");
    return `instanceView.state ${g.instanceView.state}`;
});

await step("containerGroups.beginStartAndWait runs it again", async () => {
    await client.containerGroups.beginStartAndWait(RG, NAME, lro());
    const g = await waitFor("containers[0] Running", (x) => containerState(x) === "Running");
    return `container ${containerState(g)}, group ${g.instanceView && g.instanceView.state}`;
});

await step("containerGroups.beginDeleteAndWait deletes it; get then answers 404 ResourceNotFound", async () => {
    await client.containerGroups.beginDeleteAndWait(RG, NAME, lro());
    const e = await expectRestError(client.containerGroups.get(RG, NAME, call()), 404);
    check(e.code === "ResourceNotFound", `code is ${JSON.stringify(e.code)}`);
    return `code ${e.code}`;
});

await step("a wrong token is refused with 401", async () => {
    const bad = clientFor(token + "-wrong", subscriptionId);
    const e = await expectRestError(collect(bad.containerGroups.listByResourceGroup(RG, call())), 401);
    return `code ${e.code}`;
});

await step("the token on another subscription's path is refused with 403", async () => {
    const other = clientFor(token, OTHER_SUBSCRIPTION);
    const e = await expectRestError(collect(other.containerGroups.listByResourceGroup(RG, call())), 403);
    return `code ${e.code}`;
});

finish();
