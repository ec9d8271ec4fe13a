import { Box, Button, Code, Field, Flex, HStack, Input, NativeSelect, Table, Text } from "@chakra-ui/react";
import { useCallback, useEffect, useState } from "react";

import { ApiError, type FieldErrors, formatTime, get, send } from "../api";
import { Loading, Notice, PageTitle, Section, StateBadge, UiLink } from "../components/common";

export type EventRow = { id: number; kind: string; integration: string; dag_id: string; run_id: string;
  task_id: string | null; try_number: number | null; is_final: boolean; occurred_at: string;
  error_message: string; traceback: string; dag_url: string; run_url: string | null; task_url: string | null };
type ErrorRow = { id: number; occurred_at: string; category: string; integration: string | null;
  server: string | null; reason: string; outbox_id: number | null };
export type OutboxRow = { id: number; kind: string; integration: string; dag_id: string; state: string;
  smtp_conn_id: string; attempts: number; created_at: string; sent_at: string | null; last_error: string | null;
  recipients: string[] };
type Listing = { must_choose: boolean; choices: string[]; events: EventRow[]; events_total: number;
  errors: ErrorRow[]; errors_total: number; outbox: OutboxRow[]; outbox_total: number;
  outbox_counts: Record<string, number> | null; error_types: string[][]; categories: string[][];
  outbox_states: string[]; quick_ranges: string[][]; is_admin: boolean;
  pages: { events: number; errors: number; outbox: number } };
type Filters = { type: string; integration: string; category: string; since: string; until: string; ostate: string };

const EMPTY: Filters = { type: "all", integration: "", category: "", since: "", until: "", ostate: "" };

export const EventsTable = ({ events }: { events: EventRow[] }) => {
  const [open, setOpen] = useState<number>();
  return (
    <Table.Root size="sm" data-testid="fn-events">
      <Table.Header><Table.Row>
        <Table.ColumnHeader>When</Table.ColumnHeader><Table.ColumnHeader>DAG</Table.ColumnHeader>
        <Table.ColumnHeader>Run / task</Table.ColumnHeader><Table.ColumnHeader>Error</Table.ColumnHeader>
      </Table.Row></Table.Header>
      <Table.Body>
        {events.map((e) => (
          <Table.Row key={e.id} data-event-id={e.id} verticalAlign="top">
            <Table.Cell whiteSpace="nowrap">{formatTime(e.occurred_at)}</Table.Cell>
            <Table.Cell><UiLink to={e.dag_url} testId="fn-event-dag">{e.dag_id}</UiLink></Table.Cell>
            <Table.Cell>
              {e.run_url ? <UiLink to={e.run_url} testId="fn-event-run">{e.run_id}</UiLink> : e.run_id}
              {e.task_id && e.task_url ? <> / <UiLink to={e.task_url} testId="fn-event-log">{e.task_id} (log)</UiLink></> : null}
              {e.try_number ? <Text fontSize="xs" color="fg.muted">try {e.try_number}{e.is_final ? "" : ", will retry"}</Text> : null}
            </Table.Cell>
            <Table.Cell>
              <Text>{e.error_message || e.kind}</Text>
              {e.traceback ? (
                <>
                  <Button size="2xs" variant="ghost" onClick={() => setOpen(open === e.id ? undefined : e.id)}
                    data-testid="fn-event-detail">{open === e.id ? "Hide detail" : "Detail"}</Button>
                  {open === e.id ? <Code display="block" whiteSpace="pre-wrap" p={2} mt={1}>{e.traceback}</Code> : null}
                </>
              ) : null}
            </Table.Cell>
          </Table.Row>
        ))}
      </Table.Body>
    </Table.Root>
  );
};

export const OutboxTable = ({ rows, isAdmin, onAction }: { rows: OutboxRow[]; isAdmin: boolean;
  onAction?: (id: number, action: "send" | "retry") => void }) => (
  <Table.Root size="sm" data-testid="fn-outbox">
    <Table.Header><Table.Row>
      <Table.ColumnHeader>#</Table.ColumnHeader><Table.ColumnHeader>Kind</Table.ColumnHeader>
      <Table.ColumnHeader>Integration</Table.ColumnHeader><Table.ColumnHeader>State</Table.ColumnHeader>
      <Table.ColumnHeader>Created</Table.ColumnHeader><Table.ColumnHeader>Last error</Table.ColumnHeader>
      <Table.ColumnHeader />
    </Table.Row></Table.Header>
    <Table.Body>
      {rows.map((o) => (
        <Table.Row key={o.id} data-outbox-id={o.id} data-state={o.state}>
          <Table.Cell>{o.id}</Table.Cell><Table.Cell>{o.kind}</Table.Cell>
          <Table.Cell>{o.integration} ({o.smtp_conn_id})</Table.Cell>
          <Table.Cell><StateBadge state={o.state} /> {o.attempts ? `${o.attempts} attempt(s)` : ""}</Table.Cell>
          <Table.Cell whiteSpace="nowrap">{formatTime(o.created_at)}</Table.Cell>
          <Table.Cell>{o.last_error}</Table.Cell>
          <Table.Cell>
            {isAdmin && onAction && o.state === "pending" ? <Button size="xs" onClick={() => onAction(o.id, "send")} data-testid="fn-send-now">Send now</Button> : null}
            {isAdmin && onAction && o.state === "failed" ? <Button size="xs" onClick={() => onAction(o.id, "retry")} data-testid="fn-retry">Retry</Button> : null}
          </Table.Cell>
        </Table.Row>
      ))}
    </Table.Body>
  </Table.Root>
);

const Select = ({ name, value, options, onChange, label, error }: { name: string; value: string; label: string;
  options: string[][]; onChange: (v: string) => void; error?: string }) => (
  <Field.Root invalid={!!error} w="auto">
    <Field.Label>{label}</Field.Label>
    <NativeSelect.Root size="sm"><NativeSelect.Field name={name} value={value} data-testid={`fn-filter-${name}`}
      onChange={(e) => onChange(e.target.value)}>
      {options.map(([v, l]) => <option key={v} value={v}>{l}</option>)}
    </NativeSelect.Field></NativeSelect.Root>
    <Field.ErrorText>{error}</Field.ErrorText>
  </Field.Root>
);

export const Errors = () => {
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [pages, setPages] = useState({ epage: 1, opage: 1, xpage: 1 });
  const [data, setData] = useState<Listing>();
  const [fieldErrors, setFieldErrors] = useState<FieldErrors>({});
  const [notice, setNotice] = useState<{ status: "success" | "error" | "warning"; text: string }>();

  const load = useCallback(() => {
    get<Listing>("/errors", { ...filters, ...pages })
      .then((body) => { setData(body); setFieldErrors({}); })
      .catch((err: ApiError) => { setFieldErrors(err.fields); setNotice({ status: "error", text: err.message }); });
  }, [filters, pages]);
  useEffect(load, [load]);

  const act = (id: number, action: "send" | "retry") => {
    send<{ message: string; sent: boolean }>("POST", `/outbox/${id}/${action}`)
      .then((res) => setNotice({ status: res.sent ? "success" : "error", text: res.message }))
      .catch((err: ApiError) => setNotice({ status: "warning", text: err.message }))
      .finally(load);
  };
  const apply = (next: Filters) => { setNotice(undefined); setPages({ epage: 1, opage: 1, xpage: 1 }); setFilters(next); };
  const set = (name: keyof Filters) => (value: string) => setDraft((d) => ({ ...d, [name]: value }));

  if (!data) return <Box><PageTitle>Error Management</PageTitle>{notice ? <Notice status="error">{notice.text}</Notice> : <Loading />}</Box>;
  return (
    <Box data-testid="fn-errors">
      <PageTitle>Error Management</PageTitle>
      {notice ? <Notice status={notice.status}>{notice.text}</Notice> : null}
      <form onSubmit={(e) => { e.preventDefault(); apply(draft); }}>
        <Flex gap={3} wrap="wrap" align="flex-end" mb={3}>
          <Select name="type" label="Type" value={draft.type} options={data.error_types} onChange={set("type")} />
          <Select name="integration" label="Integration" value={draft.integration}
            options={[["", "All"], ...data.choices.map((c) => [c, c])]} onChange={set("integration")} />
          <Select name="category" label="Category" value={draft.category}
            options={[["", "All"], ...data.categories]} onChange={set("category")} />
          <Field.Root invalid={!!fieldErrors.since} w="auto"><Field.Label>Since (UTC)</Field.Label>
            <Input size="sm" type="datetime-local" name="since" value={draft.since} data-testid="fn-filter-since"
              onChange={(e) => set("since")(e.target.value)} /><Field.ErrorText>{fieldErrors.since}</Field.ErrorText></Field.Root>
          <Field.Root invalid={!!fieldErrors.until} w="auto"><Field.Label>Until (UTC)</Field.Label>
            <Input size="sm" type="datetime-local" name="until" value={draft.until}
              onChange={(e) => set("until")(e.target.value)} /><Field.ErrorText>{fieldErrors.until}</Field.ErrorText></Field.Root>
          <Select name="ostate" label="Outbox state" value={draft.ostate}
            options={[["", "All"], ...data.outbox_states.map((s) => [s, s])]} onChange={set("ostate")} error={fieldErrors.ostate} />
          <Button size="sm" type="submit" data-testid="fn-filter-apply">Filter</Button>
          <Button size="sm" variant="ghost" onClick={() => { setDraft(EMPTY); apply(EMPTY); }}>Clear</Button>
        </Flex>
        <HStack gap={2} mb={3}>
          {data.quick_ranges.map(([label, since]) => (
            <Button key={label} size="2xs" variant="outline" onClick={() => { const next = { ...draft, since }; setDraft(next); apply(next); }}>{label}</Button>
          ))}
        </HStack>
      </form>
      {data.must_choose ? <Notice status="info">Choose an integration to see its errors.</Notice> : null}
      {data.outbox_counts ? (
        <HStack mb={3} gap={3} data-testid="fn-outbox-counts">
          {Object.entries(data.outbox_counts).map(([s, n]) => <Text key={s}><StateBadge state={s} /> {n}</Text>)}
        </HStack>
      ) : null}
      {filters.type !== "other" ? (
        <Section title={`Integration errors (${data.events_total})`}>
          <EventsTable events={data.events} />
          <Pager page={pages.epage} pages={data.pages.events} onPage={(p) => setPages({ ...pages, epage: p })} />
        </Section>
      ) : null}
      {filters.type !== "integration" ? (
        <Section title={`Other errors (${data.errors_total})`}>
          <Table.Root size="sm" data-testid="fn-other-errors">
            <Table.Header><Table.Row><Table.ColumnHeader>When</Table.ColumnHeader><Table.ColumnHeader>Category</Table.ColumnHeader>
              <Table.ColumnHeader>Integration</Table.ColumnHeader><Table.ColumnHeader>Reason</Table.ColumnHeader></Table.Row></Table.Header>
            <Table.Body>{data.errors.map((e) => (
              <Table.Row key={e.id} data-error-id={e.id} data-category={e.category}>
                <Table.Cell whiteSpace="nowrap">{formatTime(e.occurred_at)}</Table.Cell><Table.Cell>{e.category}</Table.Cell>
                <Table.Cell>{e.integration}</Table.Cell><Table.Cell>{e.reason}</Table.Cell>
              </Table.Row>))}</Table.Body>
          </Table.Root>
          <Pager page={pages.opage} pages={data.pages.errors} onPage={(p) => setPages({ ...pages, opage: p })} />
        </Section>
      ) : null}
      <Section title={`Outbox (${data.outbox_total})`}>
        <OutboxTable rows={data.outbox} isAdmin={data.is_admin} onAction={act} />
        <Pager page={pages.xpage} pages={data.pages.outbox} onPage={(p) => setPages({ ...pages, xpage: p })} />
      </Section>
    </Box>
  );
};

const Pager = ({ page, pages, onPage }: { page: number; pages: number; onPage: (p: number) => void }) =>
  pages > 1 ? (
    <HStack mt={2}><Button size="2xs" disabled={page <= 1} onClick={() => onPage(page - 1)}>Previous</Button>
      <Text fontSize="sm">Page {page} of {pages}</Text>
      <Button size="2xs" disabled={page >= pages} onClick={() => onPage(page + 1)}>Next</Button></HStack>
  ) : null;
