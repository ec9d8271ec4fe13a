import { Box, Button, Field, HStack, NativeSelect, Stack, Text } from "@chakra-ui/react";
import { useEffect, useState } from "react";

import { ApiError, type FieldErrors, formatTime, get, send } from "../api";
import { Loading, Notice, PageTitle, Section } from "../components/common";

type Overview = { presets: Array<{ value: string; label: string }>; stored: string | null; configured: string;
  effective: string; effective_label: string; source: string; next_run: string | null;
  last_pass: { finished_at: string | null; trigger: string } | null; message?: string };

export const Settings = () => {
  const [data, setData] = useState<Overview>();
  const [value, setValue] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [notice, setNotice] = useState<{ status: "success" | "error"; text: string }>();

  useEffect(() => {
    get<Overview>("/settings").then((body) => { setData(body); setValue(body.stored ?? ""); })
      .catch((err: ApiError) => setNotice({ status: "error", text: err.message }));
  }, []);

  const save = () => send<Overview>("PUT", "/settings", { schedule: value })
    .then((body) => { setData(body); setErrors({}); setNotice({ status: "success", text: body.message ?? "Saved." }); })
    .catch((err: ApiError) => { setErrors(err.fields); setNotice({ status: "error", text: err.message }); });

  return (
    <Box data-testid="fn-settings" maxW="3xl">
      <PageTitle>Settings</PageTitle>
      {notice ? <Notice status={notice.status}>{notice.text}</Notice> : null}
      {!data ? (notice ? null : <Loading />) : (
        <Section title="Post Failure Notification schedule">
          <Stack gap={3}>
            <Text data-testid="fn-effective">Now: <b>{data.effective_label}</b> ({data.effective} UTC), from {data.source}</Text>
            <Text>Next run: <span data-testid="fn-next-run">{formatTime(data.next_run)}</span></Text>
            <Text>Last pass: {data.last_pass ? `${formatTime(data.last_pass.finished_at)} (${data.last_pass.trigger})` : "none yet"}</Text>
            {data.configured ? <Text>[failnotify] notification_schedule: {data.configured}</Text> : null}
            <Field.Root invalid={!!errors.schedule}>
              <Field.Label>Schedule</Field.Label>
              <NativeSelect.Root maxW="md"><NativeSelect.Field name="schedule" value={value} data-testid="fn-schedule"
                onChange={(e) => setValue(e.target.value)}>
                <option value="">Not set (configuration or default)</option>
                {data.presets.map((p) => <option key={p.value} value={p.value}>{p.label}</option>)}
              </NativeSelect.Field></NativeSelect.Root>
              <Field.ErrorText>{errors.schedule}</Field.ErrorText>
            </Field.Root>
            <HStack><Button onClick={save} data-testid="fn-schedule-save">Save</Button></HStack>
            <Text fontSize="sm" color="fg.muted">The job picks a change up at the next parse of its DAG.</Text>
          </Stack>
        </Section>
      )}
    </Box>
  );
};
