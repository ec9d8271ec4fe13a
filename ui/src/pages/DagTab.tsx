import { Box, Button, HStack, Stack, Text } from "@chakra-ui/react";
import { useEffect, useState } from "react";
import { useNavigate } from "react-router-dom";

import { ApiError, get } from "../api";
import { Loading, NAV_BASE, Notice, Section } from "../components/common";
import { type EventRow, EventsTable, OutboxTable, type OutboxRow } from "./Errors";

type Direction = { smtp_conn_id: string; recipients: string[]; cc: string[]; subject_prefix: string;
  include_error_trace: boolean; global: { enabled: boolean; inactivity_minutes: number | null;
    notify_immediately: boolean; failure_count_threshold: number }; processing: { enabled: boolean;
    notify_before_max_retries: boolean } };
type Integration = { registered: boolean; can_edit: boolean; flags: Array<{ label: string; problem: string }>;
  registration: Direction & { backward_integration?: string | null; same_for_backward: boolean; backward: Direction } };
type Activity = { events: EventRow[]; events_total: number; outbox: OutboxRow[]; outbox_total: number };

const Summary = ({ d }: { d: Direction }) => (
  <Stack gap={1} fontSize="sm">
    <Text>Email server: <b>{d.smtp_conn_id}</b></Text>
    <Text>Recipients: {d.recipients.join(", ")}{d.cc.length ? ` (CC ${d.cc.join(", ")})` : ""}</Text>
    <Text>Subject prefix: {d.subject_prefix || "—"} · error trace: {d.include_error_trace ? "yes" : "no"}</Text>
    <Text>Global: {d.global.enabled ? `on, threshold ${d.global.failure_count_threshold}${d.global.notify_immediately ? ", immediately" : ""}${d.global.inactivity_minutes ? `, inactivity ${d.global.inactivity_minutes} min` : ""}` : "off"}</Text>
    <Text>Processing: {d.processing.enabled ? `on${d.processing.notify_before_max_retries ? ", before the last retry" : ""}` : "off"}</Text>
  </Stack>
);

// The "Failure notification" tab of a DAG's page.
export const DagTab = ({ dagId }: { dagId: string }) => {
  const navigate = useNavigate();
  const [data, setData] = useState<Integration>();
  const [activity, setActivity] = useState<Activity>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    const id = encodeURIComponent(dagId);
    get<Integration>(`/integrations/${id}`).then(setData).catch((err: ApiError) => setError(err.message));
    get<Activity>(`/integrations/${id}/activity`).then(setActivity).catch(() => undefined);
  }, [dagId]);
  if (error) return <Notice status="error">{error}</Notice>;
  if (!data) return <Loading />;
  const reg = data.registration;
  return (
    <Box p={2} data-testid="fn-dag-tab">
      <HStack justify="space-between" mb={3}>
        <Text data-testid="fn-dag-tab-status">{data.registered ? `Failure notification is registered for ${dagId}.` : `${dagId} is not registered for failure notification.`}</Text>
        <Button size="sm" onClick={() => navigate(`${NAV_BASE}/configure/${encodeURIComponent(dagId)}`)} data-testid="fn-dag-tab-configure">
          {data.registered ? (data.can_edit ? "Configure" : "View configuration") : "Configure"}
        </Button>
      </HStack>
      {data.flags.map((f) => <Notice key={f.problem} status="warning">{f.label}</Notice>)}
      {data.registered ? (
        <Section title="Configuration">
          <Summary d={reg} />
          {reg.backward_integration ? (
            <Box mt={3}><Text fontWeight="bold">Backward: {reg.backward_integration}{reg.same_for_backward ? " (same settings)" : ""}</Text>
              {!reg.same_for_backward ? <Summary d={reg.backward} /> : null}</Box>
          ) : null}
        </Section>
      ) : null}
      <Section title={`Recent notifications (${activity?.outbox_total ?? 0})`}>
        {activity ? <OutboxTable rows={activity.outbox} isAdmin={false} /> : <Loading />}
      </Section>
      <Section title={`Recent errors (${activity?.events_total ?? 0})`}>
        {activity ? <EventsTable events={activity.events} /> : <Loading />}
      </Section>
    </Box>
  );
};
