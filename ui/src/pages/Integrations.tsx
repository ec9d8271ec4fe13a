import { Box, Button, Checkbox, Flex, HStack, Input, NativeSelect, Stack, Table, Text } from "@chakra-ui/react";
import { useCallback, useEffect, useState } from "react";
import { useNavigate } from "react-router-dom";

import { ApiError, get } from "../api";
import { Loading, NAV_BASE, Notice, PageTitle, UiLink } from "../components/common";
import { BulkForm } from "./Bulk";

type Flag = { integration: string; dag_id: string; label: string; problem: string };
type Row = {
  dag_id: string; description: string; owners: string; is_paused: boolean; registered: boolean;
  directions: string[]; backward_integration: string | null; backward_of: string | null;
  email_server: string | null; can_edit: boolean; failures_per_day: number[] | null; flags: Flag[];
  dag_url: string;
};
type Listing = { rows: Row[]; total: number; page: number; pages: number; size: number; page_sizes: number[];
  sparkline_days: number; flagged: Flag[] };

// Failures per day as small bars (the chart of the seed's Integrations page).
const Sparkline = ({ counts, days }: { counts: number[]; days: number }) => {
  const peak = Math.max(1, ...counts);
  const total = counts.reduce((a, b) => a + b, 0);
  return (
    <Flex align="flex-end" gap="1px" h="24px" title={`${total} failures in ${days} days`} data-testid="fn-sparkline">
      {counts.map((count, index) => (
        <Box key={index} w="5px" h={`${Math.max(2, (22 * count) / peak)}px`}
          bg={count ? "red.solid" : "border.emphasized"} />
      ))}
    </Flex>
  );
};

const Status = ({ row }: { row: Row }) => {
  if (row.registered) {
    return <Text>Registered ({row.directions.join(" + ")}){row.backward_integration
      ? <> · backward: <UiLink to={`${NAV_BASE}/configure/${row.backward_integration}`}>{row.backward_integration}</UiLink></>
      : null}</Text>;
  }
  if (row.backward_of) return <Text color="fg.muted">Covered as the backward DAG of {row.backward_of}</Text>;
  return <Text color="fg.muted">Not registered</Text>;
};

export const Integrations = () => {
  const navigate = useNavigate();
  const [query, setQuery] = useState("");
  const [search, setSearch] = useState("");
  const [page, setPage] = useState(1);
  const [size, setSize] = useState(25);
  const [data, setData] = useState<Listing>();
  const [error, setError] = useState<string>();
  const [selected, setSelected] = useState<string[]>([]);
  const [bulk, setBulk] = useState(false);

  const load = useCallback(() => {
    get<Listing>("/integrations", { q: search, page, size })
      .then((body) => { setData(body); setError(undefined); })
      .catch((err: ApiError) => setError(err.message));
  }, [search, page, size]);
  useEffect(load, [load]);

  const toggle = (dagId: string) =>
    setSelected((old) => (old.includes(dagId) ? old.filter((d) => d !== dagId) : [...old, dagId]));

  return (
    <Box>
      <PageTitle>Integrations</PageTitle>
      {error ? <Notice status="error" title="Could not load the integrations">{error}</Notice> : null}
      {data?.flagged.length ? (
        <Notice status="warning" title="Registrations that cannot work as configured">
          <Stack gap={0}>{data.flagged.map((f) => <Text key={`${f.integration}-${f.dag_id}-${f.problem}`}
            data-testid="fn-flag">{f.integration}: {f.label}</Text>)}</Stack>
        </Notice>
      ) : null}
      <form onSubmit={(e) => { e.preventDefault(); setPage(1); setSearch(query.trim()); }}>
        <HStack mb={3} maxW="2xl">
          <Input placeholder="Search DAG id or description" value={query} data-testid="fn-search"
            onChange={(e) => setQuery(e.target.value)} />
          <Button type="submit">Search</Button>
          <Button variant="outline" disabled={!selected.length} data-testid="fn-bulk-open"
            onClick={() => setBulk(true)}>Configure selected ({selected.length})</Button>
        </HStack>
      </form>
      {bulk ? <BulkForm dagIds={selected} onClose={(done) => { setBulk(false); if (done) { setSelected([]); load(); } }} /> : null}
      {!data ? <Loading /> : (
        <>
          <Table.Root size="sm" interactive data-testid="fn-integrations">
            <Table.Header>
              <Table.Row>
                <Table.ColumnHeader w="8" />
                <Table.ColumnHeader>DAG</Table.ColumnHeader>
                <Table.ColumnHeader>Status</Table.ColumnHeader>
                <Table.ColumnHeader>Email server</Table.ColumnHeader>
                <Table.ColumnHeader>Failures ({data.sparkline_days} days)</Table.ColumnHeader>
                <Table.ColumnHeader />
              </Table.Row>
            </Table.Header>
            <Table.Body>
              {data.rows.map((row) => (
                <Table.Row key={row.dag_id} data-dag-id={row.dag_id}>
                  <Table.Cell>
                    {row.can_edit && !row.registered && !row.backward_of ? (
                      <Checkbox.Root size="sm" checked={selected.includes(row.dag_id)}
                        onCheckedChange={() => toggle(row.dag_id)} aria-label={`select ${row.dag_id}`}>
                        <Checkbox.HiddenInput data-testid={`fn-select-${row.dag_id}`} />
                        <Checkbox.Control />
                      </Checkbox.Root>
                    ) : null}
                  </Table.Cell>
                  <Table.Cell>
                    <UiLink to={row.dag_url} testId={`fn-dag-link-${row.dag_id}`}>{row.dag_id}</UiLink>
                    {row.is_paused ? <Text as="span" color="fg.muted"> (paused)</Text> : null}
                    <Text fontSize="xs" color="fg.muted">{row.description}</Text>
                    {row.flags.map((f) => <Text key={f.problem} fontSize="xs" color="fg.error">{f.label}</Text>)}
                  </Table.Cell>
                  <Table.Cell><Status row={row} /></Table.Cell>
                  <Table.Cell>{row.email_server}</Table.Cell>
                  <Table.Cell>{row.failures_per_day ? <Sparkline counts={row.failures_per_day} days={data.sparkline_days} /> : null}</Table.Cell>
                  <Table.Cell>
                    <Button size="xs" variant="outline" data-testid={`fn-configure-${row.dag_id}`}
                      onClick={() => navigate(`${NAV_BASE}/configure/${encodeURIComponent(row.dag_id)}`)}>
                      {row.registered ? (row.can_edit ? "Edit" : "View") : "Configure"}
                    </Button>
                  </Table.Cell>
                </Table.Row>
              ))}
            </Table.Body>
          </Table.Root>
          <HStack mt={3} gap={3}>
            <Button size="xs" disabled={data.page <= 1} onClick={() => setPage(data.page - 1)}>Previous</Button>
            <Text data-testid="fn-page">Page {data.page} of {data.pages} · {data.total} DAGs</Text>
            <Button size="xs" disabled={data.page >= data.pages} onClick={() => setPage(data.page + 1)}>Next</Button>
            <NativeSelect.Root size="xs" w="24">
              <NativeSelect.Field value={String(size)} onChange={(e) => { setPage(1); setSize(Number(e.target.value)); }}>
                {data.page_sizes.map((s) => <option key={s} value={s}>{s} / page</option>)}
              </NativeSelect.Field>
            </NativeSelect.Root>
          </HStack>
        </>
      )}
    </Box>
  );
};

