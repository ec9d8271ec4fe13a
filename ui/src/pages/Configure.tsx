import { Box, Button, Checkbox, Field, Flex, HStack, Input, NativeSelect, Stack, Text } from "@chakra-ui/react";
import { type ReactNode, useCallback, useEffect, useState } from "react";
import { useNavigate, useParams } from "react-router-dom";

import { ApiError, type FieldErrors, get, send } from "../api";
import { Loading, NAV_BASE, Notice, PageTitle, Section, UiLink } from "../components/common";

type DirectionDict = {
  smtp_conn_id: string; recipients: string[] | string; cc: string[] | string; subject_prefix: string;
  include_error_trace: boolean;
  global: { enabled: boolean; inactivity_minutes: number | string | null; notify_immediately: boolean;
    failure_count_threshold: number | string | null };
  processing: { enabled: boolean; notify_before_max_retries: boolean };
};
type Registration = DirectionDict & { backward_integration?: string | null; same_for_backward: boolean;
  backward: DirectionDict };
type Server = { conn_id: string; host: string; source: string };
type Integration = { dag_id: string; registered: boolean; registration: Registration; can_edit: boolean;
  flags: Array<{ label: string; problem: string }>; email_servers: Server[]; backward_choices: string[];
  dag_url: string; connections_url: string };
type Outcome = { ok: boolean; direction: string; message: string };

// The form keeps text as typed; the core (server side) parses and validates it, like the FAB form.
type DirectionForm = { smtp_conn_id: string; recipients: string; cc: string; subject_prefix: string;
  include_error_trace: boolean; global_enabled: boolean; inactivity: string; notify_immediately: boolean;
  failure_count_threshold: string; processing_enabled: boolean; notify_before_max_retries: boolean };

const list = (value: string[] | string) => (Array.isArray(value) ? value.join(", ") : value ?? "");
const minutes = (value: number | string | null) => {
  if (value === null || value === "" || value === 0) return "";
  if (typeof value === "string") return value;
  if (value % 1440 === 0) return `${value / 1440}d`;
  if (value % 60 === 0) return `${value / 60}h`;
  return String(value);
};
const toForm = (d: DirectionDict): DirectionForm => ({
  smtp_conn_id: d.smtp_conn_id ?? "", recipients: list(d.recipients), cc: list(d.cc),
  subject_prefix: d.subject_prefix ?? "", include_error_trace: d.include_error_trace,
  global_enabled: d.global.enabled, inactivity: minutes(d.global.inactivity_minutes),
  notify_immediately: d.global.notify_immediately,
  failure_count_threshold: d.global.failure_count_threshold === null ? "" : String(d.global.failure_count_threshold),
  processing_enabled: d.processing.enabled, notify_before_max_retries: d.processing.notify_before_max_retries,
});
const toDict = (f: DirectionForm) => ({
  smtp_conn_id: f.smtp_conn_id.trim(), recipients: f.recipients, cc: f.cc, subject_prefix: f.subject_prefix,
  include_error_trace: f.include_error_trace,
  global: { enabled: f.global_enabled, inactivity_minutes: f.inactivity.trim() || null,
    notify_immediately: f.notify_immediately, failure_count_threshold: f.failure_count_threshold.trim() || null },
  processing: { enabled: f.processing_enabled, notify_before_max_retries: f.notify_before_max_retries },
});

const Labeled = ({ label, error, help, children, testId }: { label: string; error?: string; help?: string;
  children: ReactNode; testId: string }) => (
  <Field.Root invalid={!!error} data-testid={`fn-field-${testId}`}>
    <Field.Label>{label}</Field.Label>
    {children}
    {help && !error ? <Field.HelperText>{help}</Field.HelperText> : null}
    <Field.ErrorText data-testid={`fn-error-${testId}`}>{error}</Field.ErrorText>
  </Field.Root>
);

const Tick = ({ label, checked, onChange, disabled, name }: { label: string; checked: boolean; name: string;
  onChange: (value: boolean) => void; disabled: boolean }) => (
  <Checkbox.Root checked={checked} disabled={disabled} onCheckedChange={(e) => onChange(e.checked === true)}>
    <Checkbox.HiddenInput name={name} data-testid={`fn-check-${name}`} />
    <Checkbox.Control />
    <Checkbox.Label>{label}</Checkbox.Label>
  </Checkbox.Root>
);

const DirectionFields = ({ prefix, form, setForm, errors, servers, disabled, connectionsUrl }: {
  prefix: "" | "backward."; form: DirectionForm; setForm: (f: DirectionForm) => void; errors: FieldErrors;
  servers: Server[]; disabled: boolean; connectionsUrl: string }) => {
  const id = (name: string) => `${prefix}${name}`;
  const err = (path: string) => errors[id(path)];
  const text = (name: keyof DirectionForm) => (e: { target: { value: string } }) =>
    setForm({ ...form, [name]: e.target.value });
  const flag = (name: keyof DirectionForm) => (value: boolean) => setForm({ ...form, [name]: value });
  return (
    <Stack gap={3}>
      <Labeled label="Email server" error={err("smtp_conn_id")} testId={id("smtp_conn_id")}>
        <NativeSelect.Root disabled={disabled}>
          <NativeSelect.Field name={id("smtp_conn_id")} value={form.smtp_conn_id} onChange={text("smtp_conn_id")}>
            <option value="">Choose…</option>
            {servers.map((s) => <option key={s.conn_id} value={s.conn_id}>{s.conn_id} ({s.host})</option>)}
          </NativeSelect.Field>
        </NativeSelect.Root>
        <UiLink to={connectionsUrl} testId="fn-new-server">Create a new email server</UiLink>
      </Labeled>
      <Labeled label="Recipients" error={err("recipients")} help="comma-separated addresses" testId={id("recipients")}>
        <Input name={id("recipients")} value={form.recipients} onChange={text("recipients")} disabled={disabled} />
      </Labeled>
      <Labeled label="CC" error={err("cc")} testId={id("cc")}>
        <Input name={id("cc")} value={form.cc} onChange={text("cc")} disabled={disabled} />
      </Labeled>
      <Labeled label="Subject prefix" error={err("subject_prefix")} testId={id("subject_prefix")}>
        <Input name={id("subject_prefix")} value={form.subject_prefix} onChange={text("subject_prefix")} disabled={disabled} />
      </Labeled>
      <Labeled label="Include error trace" error={err("include_error_trace")} testId={id("include_error_trace")}>
        <NativeSelect.Root disabled={disabled}>
          <NativeSelect.Field name={id("include_error_trace")} value={form.include_error_trace ? "yes" : "no"}
            onChange={(e) => setForm({ ...form, include_error_trace: e.target.value === "yes" })}>
            <option value="yes">Yes (PDF attachment)</option>
            <option value="no">No</option>
          </NativeSelect.Field>
        </NativeSelect.Root>
      </Labeled>
      <Box borderWidth="1px" borderColor="border" borderRadius="md" p={3}>
        <Tick name={id("global_enabled")} label="Global failure notification" checked={form.global_enabled}
          onChange={flag("global_enabled")} disabled={disabled} />
        {err("global") ? <Text color="fg.error" fontSize="sm">{err("global")}</Text> : null}
        <Stack gap={3} mt={2} pl={6}>
          <Labeled label="Inactivity (minutes, or 2h / 1d)" error={err("global.inactivity_minutes")} testId={id("global.inactivity_minutes")}>
            <Input name={id("inactivity")} value={form.inactivity} onChange={text("inactivity")} disabled={disabled} />
          </Labeled>
          <Tick name={id("notify_immediately")} label="Notify immediately" checked={form.notify_immediately}
            onChange={flag("notify_immediately")} disabled={disabled} />
          <Labeled label="Failure count threshold" error={err("global.failure_count_threshold")} testId={id("global.failure_count_threshold")}>
            <Input name={id("failure_count_threshold")} value={form.failure_count_threshold}
              onChange={text("failure_count_threshold")} disabled={disabled} />
          </Labeled>
        </Stack>
      </Box>
      <Box borderWidth="1px" borderColor="border" borderRadius="md" p={3}>
        <Tick name={id("processing_enabled")} label="Processing failure notification" checked={form.processing_enabled}
          onChange={flag("processing_enabled")} disabled={disabled} />
        {err("processing") ? <Text color="fg.error" fontSize="sm">{err("processing")}</Text> : null}
        <Box mt={2} pl={6}>
          <Tick name={id("notify_before_max_retries")} label="Notify before the last retry"
            checked={form.notify_before_max_retries} onChange={flag("notify_before_max_retries")} disabled={disabled} />
        </Box>
      </Box>
    </Stack>
  );
};

export const Configure = () => {
  const { dagId = "" } = useParams();
  const navigate = useNavigate();
  const [data, setData] = useState<Integration>();
  const [forward, setForward] = useState<DirectionForm>();
  const [backward, setBackward] = useState<DirectionForm>();
  const [backwardDag, setBackwardDag] = useState("");
  const [same, setSame] = useState(true);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [notice, setNotice] = useState<{ status: "error" | "success" | "warning"; text: string }>();
  const [outcomes, setOutcomes] = useState<Outcome[]>([]);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);

  const load = useCallback(() => {
    get<Integration>(`/integrations/${encodeURIComponent(dagId)}`).then((body) => {
      setData(body);
      setForward(toForm(body.registration));
      setBackward(toForm(body.registration.backward));
      setBackwardDag(body.registration.backward_integration ?? "");
      setSame(body.registration.same_for_backward);
    }).catch((err: ApiError) => setNotice({ status: "error", text: err.message }));
  }, [dagId]);
  useEffect(load, [load]);

  if (!data || !forward || !backward) return notice ? <Notice status="error">{notice.text}</Notice> : <Loading />;
  const body = () => ({ ...toDict(forward), backward_integration: backwardDag || null, same_for_backward: same,
    ...(same ? {} : { backward: toDict(backward) }) });
  const run = (action: () => Promise<void>) => {
    setBusy(true); setNotice(undefined); setOutcomes([]);
    action().catch((err: ApiError) => { setErrors(err.fields); setNotice({ status: "error", text: err.message }); })
      .finally(() => setBusy(false));
  };
  const save = () => run(async () => {
    const res = await send<{ message: string }>("PUT", `/integrations/${encodeURIComponent(dagId)}`, body());
    setErrors({}); setNotice({ status: "success", text: res.message }); load();
  });
  const test = () => run(async () => {
    const res = await send<{ ok: boolean; outcomes: Outcome[] }>("POST", `/integrations/${encodeURIComponent(dagId)}/test`, body());
    setErrors({}); setOutcomes(res.outcomes);
    setNotice({ status: res.ok ? "success" : "warning", text: res.ok ? "Test mail sent." : "A test mail was not sent." });
  });
  const unregister = () => run(async () => {
    await send("DELETE", `/integrations/${encodeURIComponent(dagId)}`);
    navigate(NAV_BASE);
  });
  const disabled = !data.can_edit || busy;

  return (
    <Box data-testid="fn-configure" maxW="4xl">
      <PageTitle>Configure Failure Notification: <UiLink to={data.dag_url} testId="fn-configure-dag-link">{dagId}</UiLink></PageTitle>
      <Text mb={2} color="fg.muted" data-testid="fn-registered">{data.registered ? "Registered for failure notification" : "Not registered yet"}</Text>
      {data.flags.map((f) => <Notice key={f.problem} status="warning">{f.label}</Notice>)}
      {notice ? <Notice status={notice.status}>{notice.text}</Notice> : null}
      {outcomes.map((o) => <Notice key={o.direction} status={o.ok ? "success" : "error"} title={o.direction}>{o.message}</Notice>)}
      {!data.can_edit ? <Notice status="info">You may read this configuration, not change it.</Notice> : null}
      <Section title="Forward direction">
        <DirectionFields prefix="" form={forward} setForm={setForward} errors={errors} servers={data.email_servers}
          disabled={disabled} connectionsUrl={data.connections_url} />
      </Section>
      <Section title="Backward direction">
        <Stack gap={3}>
          <Labeled label="Backward integration (DAG)" error={errors.backward_integration} testId="backward_integration">
            <NativeSelect.Root disabled={disabled}>
              <NativeSelect.Field name="backward_integration" value={backwardDag} onChange={(e) => setBackwardDag(e.target.value)}>
                <option value="">None</option>
                {data.backward_choices.map((d) => <option key={d} value={d}>{d}</option>)}
              </NativeSelect.Field>
            </NativeSelect.Root>
          </Labeled>
          <Tick name="same_for_backward" label="Same setting for backward direction" checked={same}
            onChange={setSame} disabled={disabled} />
          {errors.backward ? <Text color="fg.error">{errors.backward}</Text> : null}
          {!same ? <DirectionFields prefix="backward." form={backward} setForm={setBackward} errors={errors}
            servers={data.email_servers} disabled={disabled} connectionsUrl={data.connections_url} /> : null}
        </Stack>
      </Section>
      {errors.integration ? <Notice status="error">{errors.integration}</Notice> : null}
      <Flex gap={2} wrap="wrap">
        <Button onClick={save} disabled={disabled} data-testid="fn-save">{data.registered ? "Update" : "Save"}</Button>
        <Button variant="outline" onClick={test} disabled={disabled} data-testid="fn-test">Test</Button>
        {data.registered && data.can_edit ? (
          <Button colorPalette="red" variant="outline" onClick={() => setConfirming(true)} data-testid="fn-unregister">Unregister</Button>
        ) : null}
        <Button variant="ghost" onClick={() => navigate(NAV_BASE)}>Back to Integrations</Button>
      </Flex>
      {confirming ? (
        <Box mt={3} data-testid="fn-unregister-confirm">
          <Notice status="warning" title={`Unregister ${dagId}?`}>
            Its configuration is removed; no more failure notification is sent for it.
          </Notice>
          <HStack>
            <Button colorPalette="red" onClick={unregister} data-testid="fn-unregister-yes">Yes, unregister</Button>
            <Button variant="ghost" onClick={() => setConfirming(false)}>Cancel</Button>
          </HStack>
        </Box>
      ) : null}
    </Box>
  );
};
