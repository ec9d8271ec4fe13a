import { Box, Button, Field, HStack, Input, NativeSelect, Stack, Text } from "@chakra-ui/react";
import { useEffect, useState } from "react";

import { ApiError, type FieldErrors, get, send } from "../api";
import { Notice, Section } from "../components/common";

type Server = { conn_id: string; host: string };
type Result = { configured: string[]; skipped: Record<string, string> };

// Configure selected: one server, recipients, CC and prefix for the selected new integrations.
export const BulkForm = ({ dagIds, onClose }: { dagIds: string[]; onClose: (done: boolean) => void }) => {
  const [servers, setServers] = useState<Server[]>([]);
  const [values, setValues] = useState({ smtp_conn_id: "", recipients: "", cc: "", subject_prefix: "" });
  const [errors, setErrors] = useState<FieldErrors>({});
  const [result, setResult] = useState<Result>();
  const [problem, setProblem] = useState<string>();

  useEffect(() => {
    if (!dagIds.length) return;
    get<{ email_servers: Server[] }>(`/integrations/${encodeURIComponent(dagIds[0])}`).then((body) => {
      setServers(body.email_servers);
      if (body.email_servers.length === 1) setValues((v) => ({ ...v, smtp_conn_id: body.email_servers[0].conn_id }));
    }).catch(() => undefined);
  }, [dagIds]);

  const submit = () => {
    setProblem(undefined);
    send<Result>("POST", "/bulk", { dag_ids: dagIds, ...values })
      .then((body) => { setResult(body); setErrors({}); })
      .catch((err: ApiError) => { setErrors(err.fields); setProblem(err.message); });
  };
  const set = (name: keyof typeof values) => (e: { target: { value: string } }) =>
    setValues((v) => ({ ...v, [name]: e.target.value }));

  return (
    <Section title={`Configure selected (${dagIds.length})`}>
      <Box data-testid="fn-bulk">
        <Text mb={2} fontSize="sm">{dagIds.join(", ")}</Text>
        {problem ? <Notice status="error">{problem}</Notice> : null}
        {result ? (
          <Notice status="success" title={`Configured: ${result.configured.join(", ") || "none"}`}>
            {Object.entries(result.skipped).map(([d, why]) => <Text key={d}>Skipped {d}: {why}</Text>)}
          </Notice>
        ) : (
          <Stack gap={3} maxW="xl">
            <Field.Root invalid={!!errors.smtp_conn_id} required>
              <Field.Label>Email server</Field.Label>
              <NativeSelect.Root>
                <NativeSelect.Field name="smtp_conn_id" value={values.smtp_conn_id} onChange={set("smtp_conn_id")}>
                  <option value="">Choose…</option>
                  {servers.map((s) => <option key={s.conn_id} value={s.conn_id}>{s.conn_id} ({s.host})</option>)}
                </NativeSelect.Field>
              </NativeSelect.Root>
              <Field.ErrorText>{errors.smtp_conn_id}</Field.ErrorText>
            </Field.Root>
            {(["recipients", "cc", "subject_prefix"] as const).map((name) => (
              <Field.Root key={name} invalid={!!errors[name]}>
                <Field.Label>{{ recipients: "Recipients", cc: "CC", subject_prefix: "Subject prefix" }[name]}</Field.Label>
                <Input name={name} value={values[name]} onChange={set(name)} />
                <Field.ErrorText>{errors[name]}</Field.ErrorText>
              </Field.Root>
            ))}
            {errors.dag_ids ? <Text color="fg.error">{errors.dag_ids}</Text> : null}
          </Stack>
        )}
        <HStack mt={3}>
          {!result ? <Button onClick={submit} data-testid="fn-bulk-apply">Apply to selected</Button> : null}
          <Button variant="ghost" onClick={() => onClose(!!result)}>Close</Button>
        </HStack>
      </Box>
    </Section>
  );
};
